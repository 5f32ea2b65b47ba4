package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/testkit"
)

// refusedUpgrade fails the test unless a WebSocket upgrade with tok gets 401.
func refusedUpgrade(t *testing.T, in *testkit.Instance, tok string) {
	t.Helper()
	_, resp, err := testkit.TryDial(t, in.WSURL(), tok)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("upgrade: %v (status %d), want 401", err, status)
	}
}

func signedHS256(t *testing.T, c auth.Claims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(testkit.JWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A signed sub that breaks the identifier rule (a NUL made every presence
// write of the instance fail) is refused like any invalid token.
func TestSignedSubjectsThatBreakTheIdentifierRuleAre401(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	now := time.Now()
	for name, sub := range map[string]string{
		"NUL": "u1\x00", "newline": "u1\nadmin", "DEL": "u\x7f", "257 bytes": strings.Repeat("s", 257),
	} {
		t.Run(name, func(t *testing.T) {
			tok := signedHS256(t, auth.Claims{RegisteredClaims: jwt.RegisteredClaims{
				Subject: sub, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}})
			refusedUpgrade(t, in, tok)
			if code, body := call(t, "GET", in.URL()+"/notifications", tok, nil); code != http.StatusUnauthorized {
				t.Errorf("inbox: %d %v, want 401", code, body)
			}
		})
	}
	// The instance is unharmed: a client still gets its welcome at once.
	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1"))
	c.Welcome()
}

// Room patterns match whole path segments: "signal/notification/u1*" no
// longer opens u10's room (and its replay).
func TestTokenRoomPatternsMatchWholeSegmentsOnly(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1", "signal/notification/u1*", "team/*"))
	c.Welcome()
	for room, allowed := range map[string]bool{
		"signal/notification/u10": false, "signal/notification/u1-admin": false,
		"team/a": true, "team/a/b": true, "team": false, "teamx": false, "team/": false,
	} {
		t.Run(room, func(t *testing.T) {
			b, _ := json.Marshal(map[string]string{"action": "join", "room": room})
			c.Send(string(b))
			if allowed {
				c.Expect("signal/system/joined")
			} else {
				c.ExpectError("forbidden")
			}
		})
	}
	c.Send(`{"action":"join","room":"signal/notification/u10","since":"01a21c61-12e3-8527-828b-5db963cee5ab"}`)
	c.ExpectError("forbidden")
}

func hs256For(t *testing.T, audience string) string {
	t.Helper()
	tok, err := auth.SignToken(testkit.JWTSecret, auth.SignOptions{Sub: "u7", TTL: time.Minute, Audience: audience, Issuer: "https://id.example"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// jwksServer is a key set served in-process on loopback.
func jwksServer(t *testing.T, keys ...map[string]string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/.well-known/jwks.json"
}

type testSigner struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
	jwk    map[string]string
}

func newSigners(t *testing.T) []testSigner {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecRaw, _ := ek.PublicKey.Bytes()
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	return []testSigner{
		{"rsa-1", jwt.SigningMethodRS256, rk, map[string]string{"kty": "RSA", "kid": "rsa-1", "n": b64(rk.N.Bytes()), "e": b64([]byte{1, 0, 1})}},
		{"ec-1", jwt.SigningMethodES256, ek, map[string]string{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64(ecRaw[1:33]), "y": b64(ecRaw[33:])}},
		{"ed-1", jwt.SigningMethodEdDSA, edPriv, map[string]string{"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": b64(edPub)}},
	}
}

func (s testSigner) sign(t *testing.T, edit func(c *auth.Claims)) string {
	t.Helper()
	now := time.Now()
	c := auth.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: "u7", Issuer: "https://id.example", Audience: jwt.ClaimStrings{"signal-ws"},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(30 * time.Minute)),
	}}
	if edit != nil {
		edit(&c)
	}
	tok := jwt.NewWithClaims(s.method, c)
	tok.Header["kid"] = s.kid
	out, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// RS256, ES256 and EdDSA tokens verified with a JWKS, with the audience,
// the issuer and the longest lifetime checked.
func TestAsymmetricTokensFromAJWKS(t *testing.T) {
	t.Parallel()
	signers := newSigners(t)
	var keys []map[string]string
	for _, s := range signers {
		keys = append(keys, s.jwk)
	}
	env := testkit.NewEnv(t)
	in := env.Serve(t, func(c *config.Config) {
		c.Auth.JWKSURL = jwksServer(t, keys...)
		c.Auth.Audience = "signal-ws"
		c.Auth.Issuer = "https://id.example"
		c.Auth.MaxTokenTTL = time.Hour
	})
	for _, s := range signers {
		t.Run(s.method.Alg()+" is accepted", func(t *testing.T) {
			c := testkit.Dial(t, in.WSURL(), s.sign(t, nil))
			c.Welcome()
			if code, _ := call(t, "GET", in.URL()+"/notifications", s.sign(t, nil), nil); code != 200 {
				t.Errorf("inbox with the token: %d", code)
			}
		})
	}
	es := signers[1]
	refused := map[string]string{
		"another audience":           es.sign(t, func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"billing"} }),
		"another issuer":             es.sign(t, func(c *auth.Claims) { c.Issuer = "https://evil.example" }),
		"a hundred-year token":       es.sign(t, func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().AddDate(100, 0, 0)) }),
		"a kid the key set lacks":    testSigner{"ec-9", es.method, es.priv, nil}.sign(t, nil),
		"ES256 naming the RSA key":   testSigner{"rsa-1", es.method, es.priv, nil}.sign(t, nil),
		"an HS256 token without aud": testkit.Token(t, "u7"),
		"HS256 for another audience": hs256For(t, "other"),
	}
	for name, tok := range refused {
		t.Run(name+" is refused", func(t *testing.T) { refusedUpgrade(t, in, tok) })
	}
	t.Run("HS256 with the secret and the right claims is still accepted", func(t *testing.T) {
		testkit.Dial(t, in.WSURL(), hs256For(t, "signal-ws")).Welcome()
	})
	code, body := call(t, "GET", in.URL()+"/readyz", "", nil)
	if checks, _ := body["checks"].(map[string]any); code != 200 || checks["auth"] != "ok" {
		t.Errorf("readyz %d %v, want the auth check ok", code, body)
	}
}
