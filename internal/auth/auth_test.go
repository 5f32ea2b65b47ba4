package auth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func hs256(t *testing.T, secret string, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(sub string, iat, exp time.Time) Claims {
	c := Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(exp)}}
	if !iat.IsZero() {
		c.IssuedAt = jwt.NewNumericDate(iat)
	}
	return c
}

func TestVerifyAcceptsOnlyValidHS256Tokens(t *testing.T) {
	v := NewVerifier("secret")
	now := time.Now()
	good, err := Sign("secret", "u1", []string{"ops/*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired := hs256(t, "secret", claims("u1", time.Time{}, now.Add(-time.Minute)))
	noExp := hs256(t, "secret", Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}})
	noSub := hs256(t, "secret", claims("", time.Time{}, now.Add(time.Hour)))
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, claims("u1", time.Time{}, now.Add(time.Hour))).SignedString([]byte("secret"))
	otherSecret, _ := Sign("other", "u1", nil, time.Hour)
	parts := strings.Split(good, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"missing", "", ErrNoToken},
		{"garbage", "abc", ErrTokenInvalid},
		{"expired", expired, ErrTokenExpired},
		{"without exp", noExp, ErrTokenInvalid},
		{"without sub", noSub, ErrTokenInvalid},
		{"alg none", none, ErrTokenInvalid},
		{"HS512 instead of HS256", hs512, ErrTokenInvalid},
		{"wrong signature", otherSecret, ErrTokenInvalid},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","exp":9999999999}`)) + "." + parts[2], ErrTokenInvalid},
		{"a NUL byte in sub", hs256(t, "secret", claims("u1\x00", now, now.Add(time.Hour))), ErrTokenInvalid},
		{"a newline in sub", hs256(t, "secret", claims("u1\nadmin", now, now.Add(time.Hour))), ErrTokenInvalid},
		{"a sub over 256 bytes", hs256(t, "secret", claims(strings.Repeat("u", 257), now, now.Add(time.Hour))), ErrTokenInvalid},
		{"issued in the future", hs256(t, "secret", claims("u1", now.Add(time.Hour), now.Add(2*time.Hour))), ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Verify(tt.token); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	c, err := v.Verify(good)
	if err != nil || c.Subject != "u1" {
		t.Fatalf("good token: %v %+v", err, c)
	}
}

func TestSubFailingTheIdentifierRuleIsNamedInTheError(t *testing.T) {
	now := time.Now()
	_, err := NewVerifier("secret").Verify(hs256(t, "secret", claims("u2\x00", now, now.Add(time.Hour))))
	if err == nil || !strings.Contains(err.Error(), "sub must name the recipient") || !strings.Contains(err.Error(), "control characters") {
		t.Fatalf("err = %v", err)
	}
}

func TestAudienceIssuerAndLifetime(t *testing.T) {
	v, err := New(Options{Secret: "secret", Audience: "signal", Issuer: "https://id.example", MaxTTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mk := func(edit func(c *Claims)) string {
		c := claims("u1", now, now.Add(time.Hour))
		c.Audience = jwt.ClaimStrings{"signal"}
		c.Issuer = "https://id.example"
		edit(&c)
		return hs256(t, "secret", c)
	}
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"right audience and issuer", mk(func(*Claims) {}), true},
		{"one of several audiences", mk(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other", "signal"} }), true},
		{"a lifetime of exactly the maximum", mk(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(24 * time.Hour)) }), true},
		{"another audience", mk(func(c *Claims) { c.Audience = jwt.ClaimStrings{"billing"} }), false},
		{"no audience", mk(func(c *Claims) { c.Audience = nil }), false},
		{"another issuer", mk(func(c *Claims) { c.Issuer = "https://evil.example" }), false},
		{"no issuer", mk(func(c *Claims) { c.Issuer = "" }), false},
		{"a hundred-year token", mk(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.AddDate(100, 0, 0)) }), false},
		{"issued long ago, still valid, too long a life", mk(func(c *Claims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(-48 * time.Hour))
		}), false},
		{"no iat, exp too far from now", mk(func(c *Claims) { c.IssuedAt = nil; c.ExpiresAt = jwt.NewNumericDate(now.Add(25 * time.Hour)) }), false},
		{"no iat, exp near", mk(func(c *Claims) { c.IssuedAt = nil }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.token)
			if tt.ok != (err == nil) {
				t.Errorf("Verify = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrTokenInvalid) {
				t.Errorf("err %v is not ErrTokenInvalid", err)
			}
		})
	}
	tok, err := SignToken("secret", SignOptions{Sub: "u1", TTL: time.Hour, Audience: "signal", Issuer: "https://id.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("SignToken with the server's audience and issuer: %v", err)
	}
}

func TestNewRefusesNoKeyAndBadKeySources(t *testing.T) {
	for name, o := range map[string]Options{
		"no key at all":                {},
		"JWKS over plain http":         {JWKSURL: "http://keys.example/jwks.json"},
		"JWKS over http on all hosts":  {JWKSURL: "http://0.0.0.0:80/jwks.json"},
		"JWKS with no scheme":          {JWKSURL: "keys.example/jwks.json"},
		"a public key file that fails": {PublicKeyFile: "/nonexistent/key.pem"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(o); err == nil {
				t.Error("New must refuse it")
			}
		})
	}
	for _, ok := range []string{"https://keys.example/jwks.json", "http://127.0.0.1:9/jwks", "http://[::1]:9/jwks", "http://localhost:9/jwks"} {
		if _, err := New(Options{JWKSURL: ok}); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func TestRoomPatternsMatchWholeSegments(t *testing.T) {
	tests := []struct {
		pattern, room string
		want          bool
	}{
		{"a/b/*", "a/b/x", true},
		{"a/b/*", "a/b/x/y", true},
		{"a/b/*", "a/bx", false},
		{"a/b/*", "a/b", false},
		{"a/b/*", "a/b/", false},
		{"a/b/u1", "a/b/u1", true},
		{"a/b/u1", "a/b/u10", false},
		{"a/b/u1", "a/b/u1/x", false},
		{"signal/notification/u1*", "signal/notification/u10", false},
		{"signal/notification/u1*", "signal/notification/u1-admin", false},
		{"signal/notification/u1*", "signal/notification/u1*", true},
		{"a/*/c", "a/b/c", false},
		{"*", "anything/at/all", true},
		{"*", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" and "+tt.room, func(t *testing.T) {
			if got := PatternAllows(tt.pattern, tt.room); got != tt.want {
				t.Errorf("PatternAllows(%q, %q) = %v, want %v", tt.pattern, tt.room, got, tt.want)
			}
		})
	}
}

func TestMayJoin(t *testing.T) {
	c := &Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}, Rooms: []string{"ops/alerts", "team/*"}}
	for room, want := range map[string]bool{
		"signal/notification/u1": true, "signal/notification/u2": false, "signal/notification/u10": false,
		"ops/alerts": true, "ops/alerts/x": false, "team/a": true, "team/a/b": true, "team/": false, "teams/a": false, "tea": false,
	} {
		if got := c.MayJoin(room); got != want {
			t.Errorf("MayJoin(%q) = %v, want %v", room, got, want)
		}
	}
	all := &Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "qa"}, Rooms: []string{"*"}}
	if !all.MayJoin("signal/notification/u2") {
		t.Error(`"*" must allow every room`)
	}
}

func TestPatternsThatReachOtherRecipients(t *testing.T) {
	for p, want := range map[string]bool{
		"*": true, "signal/*": true, "signal/notification/*": true, "signal/notification/u1/*": true,
		"signal/notification/u1": false, "ops/*": false, "ops/alerts": false, "signal/notification/u1*": false, "sig/*": false,
	} {
		if got := PatternReachesOtherRecipients(p); got != want {
			t.Errorf("PatternReachesOtherRecipients(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestSignRefusesMissingInputs(t *testing.T) {
	if _, err := Sign("", "u1", nil, time.Hour); err == nil || !strings.Contains(err.Error(), "auth.jwt_secret") {
		t.Errorf("no secret: %v", err)
	}
	if _, err := Sign("s", "", nil, time.Hour); err == nil {
		t.Error("no sub must be refused")
	}
	if _, err := Sign("s", "u", nil, 0); err == nil {
		t.Error("zero ttl must be refused")
	}
}

func TestAPIKeys(t *testing.T) {
	k := NewAPIKeys([]string{"key-one", "key-two"})
	for key, want := range map[string]bool{"key-one": true, "key-two": true, "key-on": false, "": false, "key-one ": false} {
		if got := k.Valid(key); got != want {
			t.Errorf("Valid(%q) = %v", key, got)
		}
	}
	if NewAPIKeys(nil).Valid("x") {
		t.Error("no keys configured must accept nothing")
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "": "", "Bearer": ""} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", h)
		if got := BearerToken(r); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", h, got, want)
		}
	}
}
