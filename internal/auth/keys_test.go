package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signer is a private key and the algorithm its public half is pinned to.
type signer struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

// testKeys generates one key of each type per test binary (RSA takes a while).
func testKeys(t *testing.T) (rs, es, ed signer) {
	t.Helper()
	keysOnce.Do(func() {
		rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048)
		ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, edKey, _ = ed25519.GenerateKey(rand.Reader)
	})
	return signer{"rsa-1", jwt.SigningMethodRS256, rsaKey}, signer{"ec-1", jwt.SigningMethodES256, ecKey}, signer{"ed-1", jwt.SigningMethodEdDSA, edKey}
}

func (s signer) token(t *testing.T, sub string, edit func(*jwt.Token)) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(s.method, claims(sub, now, now.Add(time.Hour)))
	tok.Header["kid"] = s.kid
	if edit != nil {
		edit(tok)
	}
	out, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (s signer) withKid(kid string) signer { s.kid = kid; return s }

// jwkOf is the public JWK of s.
func jwkOf(s signer) map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := s.priv.Public().(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": s.kid, "use": "sig", "alg": "RS256", "n": b64(k.N.Bytes()), "e": b64([]byte{1, 0, 1})}
	case *ecdsa.PublicKey:
		raw, _ := k.Bytes()
		return map[string]string{"kty": "EC", "kid": s.kid, "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": s.kid, "crv": "Ed25519", "alg": "EdDSA", "x": b64(k)}
	}
	panic("key type")
}

func pemFile(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPublicKeyFileVerifiesItsAlgorithmOnly(t *testing.T) {
	rs, es, ed := testKeys(t)
	for _, s := range []signer{rs, es, ed} {
		t.Run(s.method.Alg(), func(t *testing.T) {
			file := pemFile(t, s.priv.Public())
			v, err := New(Options{PublicKeyFile: file})
			if err != nil {
				t.Fatal(err)
			}
			if c, err := v.Verify(s.token(t, "u1", nil)); err != nil || c.Subject != "u1" {
				t.Fatalf("a token signed with the key: %v", err)
			}
			if _, err := v.Verify(s.token(t, "u1", func(tok *jwt.Token) { delete(tok.Header, "kid") })); err != nil {
				t.Errorf("a token without kid: %v", err)
			}
			pemBytes, _ := os.ReadFile(file)
			// The classic confusion: HS256 with the public key as the secret.
			confused := hs256(t, string(pemBytes), claims("admin", time.Now(), time.Now().Add(time.Hour)))
			if _, err := v.Verify(confused); !errors.Is(err, ErrTokenInvalid) {
				t.Errorf("HS256 signed with the public key: %v", err)
			}
			withSecret, _ := New(Options{PublicKeyFile: file, Secret: "the-real-secret"})
			if _, err := withSecret.Verify(confused); !errors.Is(err, ErrTokenInvalid) {
				t.Errorf("HS256 signed with the public key, a secret configured too: %v", err)
			}
			for _, other := range []signer{rs, es, ed} {
				if other.method == s.method {
					continue
				}
				if _, err := v.Verify(other.token(t, "u1", nil)); !errors.Is(err, ErrTokenInvalid) {
					t.Errorf("a %s token: %v", other.method.Alg(), err)
				}
			}
		})
	}
}

func TestPublicKeyFileRefusesWeakOrPrivateKeys(t *testing.T) {
	dir := t.TempDir()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	privDER, _ := x509.MarshalPKCS8PrivateKey(p384)
	for name, content := range map[string][]byte{
		"RSA 1024":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&small.PublicKey))}),
		"ECDSA P-384":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&p384.PublicKey))}),
		"a private key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		"not PEM":       []byte("hello"),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			os.WriteFile(p, content, 0o600)
			if _, err := New(Options{PublicKeyFile: p}); err == nil || !strings.Contains(err.Error(), "auth.public_key_file") {
				t.Errorf("New = %v, want an error naming auth.public_key_file", err)
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// keyServer is a JWKS served in-process on loopback; its key set can be
// swapped and its requests are counted.
type keyServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	status  int
	fetches atomic.Int64
}

func newKeyServer(t *testing.T, keys ...signer) *keyServer {
	ks := &keyServer{status: 200}
	ks.set(keys...)
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		if ks.status != 200 {
			w.WriteHeader(ks.status)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": ks.keys})
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) set(keys ...signer) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.keys = nil
	for _, k := range keys {
		ks.keys = append(ks.keys, jwkOf(k))
	}
}

func (ks *keyServer) setRaw(keys ...map[string]string) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.keys = keys
}

func (ks *keyServer) fail(status int) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.status = status
}

func TestJWKSVerifiesEveryAlgorithmByKid(t *testing.T) {
	rs, es, ed := testKeys(t)
	ks := newKeyServer(t, rs, es, ed)
	v, err := New(Options{JWKSURL: ks.URL + "/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Ready(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []signer{rs, es, ed} {
		if c, err := v.Verify(s.token(t, "u-"+s.kid, nil)); err != nil || c.Subject != "u-"+s.kid {
			t.Errorf("%s: %v", s.method.Alg(), err)
		}
	}
	if n := ks.fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1: known keys come from the cache", n)
	}

	refused := []struct {
		name  string
		token string
	}{
		{"an ES256 token naming the RSA key", es.withKid(rs.kid).token(t, "u1", nil)},
		{"an RS256 token naming the Ed25519 key", rs.withKid(ed.kid).token(t, "u1", nil)},
		{"HS256 signed with the RSA modulus as the secret", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims("admin", time.Now(), time.Now().Add(time.Hour)))
			tok.Header["kid"] = rs.kid
			s, _ := tok.SignedString([]byte(jwkOf(rs)["n"]))
			return s
		}()},
		{"alg none naming a key", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims("admin", time.Now(), time.Now().Add(time.Hour)))
			tok.Header["kid"] = rs.kid
			s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}()},
		{"no kid", rs.token(t, "u1", func(tok *jwt.Token) { delete(tok.Header, "kid") })},
		{"signed by another key under a known kid", func() string {
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return signer{es.kid, jwt.SigningMethodES256, other}.token(t, "u1", nil)
		}()},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Verify(tt.token); !errors.Is(err, ErrTokenInvalid) {
				t.Errorf("Verify = %v, want ErrTokenInvalid", err)
			}
		})
	}
}

func TestJWKSKeysRotateWithoutARestart(t *testing.T) {
	rs, es, _ := testKeys(t)
	ks := newKeyServer(t, rs)
	v, err := New(Options{JWKSURL: ks.URL, JWKSMinRefresh: 20 * time.Millisecond, JWKSMaxAge: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(rs.token(t, "u1", nil)); err != nil {
		t.Fatal(err)
	}
	// The issuer publishes a new key and signs with it: the unknown kid
	// fetches the set again.
	next := es.withKid("ec-2")
	ks.set(rs, next)
	time.Sleep(30 * time.Millisecond)
	if _, err := v.Verify(next.token(t, "u1", nil)); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
	// The old key is withdrawn: once the cached set is older than the
	// maximum age, it is fetched again and the old key stops working.
	ks.set(next)
	time.Sleep(350 * time.Millisecond)
	if _, err := v.Verify(rs.token(t, "u1", nil)); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("a token of the withdrawn key: %v, want refused", err)
	}
	if _, err := v.Verify(next.token(t, "u1", nil)); err != nil {
		t.Errorf("the new key after the withdrawal: %v", err)
	}
}

func TestJWKSUnknownKidsFetchAtABoundedRate(t *testing.T) {
	rs, _, _ := testKeys(t)
	ks := newKeyServer(t, rs)
	v, err := New(Options{JWKSURL: ks.URL, JWKSMinRefresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Ready(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := rs.withKid("forged-"+string(rune('a'+i%26))+time.Now().String()).token(t, "u1", nil)
			if _, err := v.Verify(tok); !errors.Is(err, ErrTokenInvalid) {
				t.Errorf("unknown kid: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := ks.fetches.Load(); n != 1 {
		t.Errorf("%d fetches for 200 tokens with unknown kids, want 1 (the first): the rate is not bounded", n)
	}
	if _, err := v.Verify(rs.token(t, "u1", nil)); err != nil {
		t.Errorf("the known key still works: %v", err)
	}
}

func TestJWKSConcurrentUnknownKidsShareOneFetch(t *testing.T) {
	rs, _, _ := testKeys(t)
	ks := newKeyServer(t, rs)
	v, _ := New(Options{JWKSURL: ks.URL, JWKSMinRefresh: time.Millisecond})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(rs.token(t, "u1", nil)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := ks.fetches.Load(); n > 3 {
		t.Errorf("%d fetches for 50 concurrent first tokens, want them to share one", n)
	}
}

func TestJWKSOutageKeepsTheKnownKeys(t *testing.T) {
	rs, es, _ := testKeys(t)
	ks := newKeyServer(t, rs)
	v, _ := New(Options{JWKSURL: ks.URL, JWKSMinRefresh: time.Millisecond, JWKSMaxAge: time.Millisecond})
	if _, err := v.Verify(rs.token(t, "u1", nil)); err != nil {
		t.Fatal(err)
	}
	ks.fail(http.StatusBadGateway)
	time.Sleep(5 * time.Millisecond)
	if _, err := v.Verify(rs.token(t, "u1", nil)); err != nil {
		t.Errorf("a known key during a key server outage: %v", err)
	}
	_, err := v.Verify(es.token(t, "u1", nil))
	if !errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), "502") {
		t.Errorf("an unknown key during the outage: %v, want refused naming the failed fetch", err)
	}
}

func TestJWKSNeverTrustsSymmetricOrMislabelledKeys(t *testing.T) {
	rs, es, _ := testKeys(t)
	ks := newKeyServer(t)
	octSecret := "shared-secret-from-the-jwks"
	mislabelled := jwkOf(es)
	mislabelled["alg"] = "RS256"
	ks.setRaw(
		map[string]string{"kty": "oct", "kid": "oct-1", "k": base64.RawURLEncoding.EncodeToString([]byte(octSecret))},
		mislabelled,
		jwkOf(rs),
	)
	v, _ := New(Options{JWKSURL: ks.URL})
	oct := jwt.NewWithClaims(jwt.SigningMethodHS256, claims("admin", time.Now(), time.Now().Add(time.Hour)))
	oct.Header["kid"] = "oct-1"
	octToken, _ := oct.SignedString([]byte(octSecret))
	if _, err := v.Verify(octToken); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("HS256 with an oct key of the JWKS: %v", err)
	}
	if _, err := v.Verify(es.token(t, "u1", nil)); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("an EC key labelled RS256: %v, want the key skipped", err)
	}
	if _, err := v.Verify(rs.token(t, "u1", nil)); err != nil {
		t.Errorf("the well-formed key beside them: %v", err)
	}
	ks.setRaw(map[string]string{"kty": "oct", "kid": "oct-1", "k": "c2VjcmV0"})
	v2, _ := New(Options{JWKSURL: ks.URL})
	if err := v2.Ready(); err == nil || !strings.Contains(err.Error(), "no usable key") {
		t.Errorf("Ready with only an oct key: %v", err)
	}
}
