package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// signRaw signs header and payload JSON as they are, with HS256.
func signRaw(secret, header, payload string) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(in))
	return in + "." + enc.EncodeToString(mac.Sum(nil))
}

// Issue 20, item 13: a crit header naming an unknown extension, and a
// string exp, were accepted.
func TestTokensFollowRFC7515CritAndRFC7519NumericDates(t *testing.T) {
	v := NewVerifier("secret")
	exp := time.Now().Add(time.Hour).Unix()
	header := `{"alg":"HS256","typ":"JWT"}`
	for _, tt := range []struct {
		name, header, payload string
		ok                    bool
	}{
		{"plain", header, fmt.Sprintf(`{"sub":"u1","exp":%d}`, exp), true},
		{"a fractional exp", header, fmt.Sprintf(`{"sub":"u1","exp":%d.5}`, exp), true},
		{"crit naming an unknown extension", `{"alg":"HS256","typ":"JWT","crit":["x-unknown"],"x-unknown":1}`, fmt.Sprintf(`{"sub":"u1","exp":%d}`, exp), false},
		{"an empty crit", `{"alg":"HS256","crit":[]}`, fmt.Sprintf(`{"sub":"u1","exp":%d}`, exp), false},
		{"a string exp", header, fmt.Sprintf(`{"sub":"u1","exp":"%d"}`, exp), false},
		{"a string iat", header, fmt.Sprintf(`{"sub":"u1","exp":%d,"iat":"%d"}`, exp, time.Now().Unix()), false},
		{"a string nbf", header, fmt.Sprintf(`{"sub":"u1","exp":%d,"nbf":"0"}`, exp), false},
		{"an object exp", header, `{"sub":"u1","exp":{"n":1}}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(signRaw("secret", tt.header, tt.payload))
			if tt.ok && (err != nil || c.Subject != "u1") {
				t.Errorf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrTokenInvalid) {
				t.Errorf("Verify = %v, want ErrTokenInvalid", err)
			}
		})
	}
}

// Issue 20, item 8: the https rule was checked on the configured URL only;
// a redirect to plain http on another host was followed.
func TestJWKSFollowsNoRedirectToPlainHTTP(t *testing.T) {
	rs, _, _ := testKeys(t)
	ks := newKeyServer(t, rs)
	// Loopback http is allowed (a local key server, a test): a redirect
	// between loopback addresses is followed.
	local := httptest.NewServer(http.RedirectHandler(ks.URL+"/jwks.json", http.StatusFound))
	t.Cleanup(local.Close)
	v, err := New(Options{JWKSURL: local.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(rs.token(t, "u1", nil)); err != nil {
		t.Fatalf("a loopback redirect: %v", err)
	}
	// A redirect to http on a host that is not loopback is refused
	// before any connection is made to it.
	for _, target := range []string{"http://keys.example.com/jwks.json", "http://10.0.0.1/jwks.json", "ftp://127.0.0.1/jwks.json"} {
		away := httptest.NewServer(http.RedirectHandler(target, http.StatusFound))
		t.Cleanup(away.Close)
		v, err := New(Options{JWKSURL: away.URL})
		if err != nil {
			t.Fatal(err)
		}
		err = v.Ready()
		if err == nil || !strings.Contains(err.Error(), "refused redirect") {
			t.Errorf("redirect to %s: Ready = %v, want the redirect refused", target, err)
		}
		if _, err := v.Verify(rs.token(t, "u1", nil)); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("redirect to %s: a token verified: %v", target, err)
		}
	}
}

// Issue 20, item 12: every key could do everything.
func TestAPIKeysCarryScopes(t *testing.T) {
	k, err := ParseAPIKeys([]string{"all-of-it", "sender:send", "ops:status+members", "boss:admin", "twice:send", "twice:inbox"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key     string
		allowed []string
	}{
		{"all-of-it", Scopes},
		{"boss", Scopes},
		{"sender", []string{ScopeSend}},
		{"ops", []string{ScopeStatus, ScopeMembers}},
		{"twice", []string{ScopeSend, ScopeInbox}},
		{"sender:send", nil}, // the entry is not the key
		{"nobody", nil},
	} {
		set, ok := k.Lookup(tt.key)
		if ok != (tt.allowed != nil) {
			t.Errorf("%s: valid %v", tt.key, ok)
		}
		for _, s := range Scopes {
			want := false
			for _, a := range tt.allowed {
				want = want || a == s || a == ScopeAdmin
			}
			if set.Allows(s) != want {
				t.Errorf("%s: scope %s allowed %v, want %v", tt.key, s, set.Allows(s), want)
			}
		}
	}
	for _, bad := range []string{"k:", "k:sned", "k:send+", ":send"} {
		if _, err := ParseAPIKeys([]string{"fine", bad}); err == nil || strings.Contains(err.Error(), "fine") {
			t.Errorf("%q: %v, want an error naming the entry by position only", bad, err)
		}
	}
	if KeyOf("abc:send+inbox") != "abc" || KeyOf("abc") != "abc" {
		t.Error("KeyOf")
	}
}
