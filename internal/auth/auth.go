package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signal-notify/signal/internal/event"
)

// Claims are what a Signal token carries.
type Claims struct {
	jwt.RegisteredClaims
	// Rooms the holder may join besides its own notification room, as
	// patterns (see PatternAllows).
	Rooms []string `json:"rooms,omitempty"`
}

// UnmarshalJSON reads the claims and refuses exp, nbf and iat that are not
// JSON numbers: RFC 7519 makes them NumericDates, and golang-jwt would
// accept the string "1999999999" as one.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		if v, ok := raw[name]; ok && !isJSONNumber(v) {
			return fmt.Errorf("%s must be a NumericDate (a JSON number of seconds), got %.40s", name, v)
		}
	}
	type plain Claims // no UnmarshalJSON: no recursion
	return json.Unmarshal(b, (*plain)(c))
}

func isJSONNumber(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9')
}

// OwnRoom is the notification room of the token's subject.
func (c *Claims) OwnRoom() string { return event.NotificationRoom(c.Subject) }

// MayJoin reports whether the token allows room.
func (c *Claims) MayJoin(room string) bool {
	if room == c.OwnRoom() {
		return true
	}
	for _, p := range c.Rooms {
		if PatternAllows(p, room) {
			return true
		}
	}
	return false
}

// Options say which tokens a Verifier accepts. At least one key source
// (Secret, PublicKeyFile, JWKSURL) is needed; several may be combined.
type Options struct {
	// Secret verifies HS256 tokens; empty: HS256 is refused.
	Secret string
	// PublicKeyFile is one PEM public key (RSA, ECDSA P-256 or Ed25519): it
	// verifies tokens of its algorithm without a kid, or whose kid is not
	// looked up in a JWKS.
	PublicKeyFile string
	// JWKSURL is a key set fetched over https (or http on loopback); tokens
	// name their key by kid.
	JWKSURL string
	// Audience and Issuer, when set, must be the token's aud (one of) and iss.
	Audience, Issuer string
	// MaxTTL bounds exp − iat (exp − now without iat); 0: no bound.
	MaxTTL time.Duration
	// JWKS tuning; zero picks DefaultJWKSMinRefresh and DefaultJWKSMaxAge.
	JWKSMinRefresh, JWKSMaxAge time.Duration
	// HTTPClient fetches the JWKS (default: one with a 5 s timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Verifier checks tokens: HS256 with a secret, RS256, ES256 and EdDSA with
// public keys. Every key is pinned to one algorithm.
type Verifier struct {
	secret []byte
	file   *publicKey
	jwks   *jwks
	maxTTL time.Duration
	parser *jwt.Parser
}

// leeway absorbs clock differences with the token issuer.
const leeway = 5 * time.Second

// NewVerifier returns a verifier of HS256 tokens signed with secret, with
// no audience, issuer or lifetime rule.
func NewVerifier(secret string) *Verifier {
	v, err := New(Options{Secret: secret})
	if err != nil { // only an empty secret fails: it then accepts nothing
		return &Verifier{parser: jwt.NewParser(jwt.WithValidMethods([]string{}))}
	}
	return v
}

// New returns a verifier for o. It reads PublicKeyFile now; the JWKS is
// fetched on first use (call Ready to fetch it at once).
func New(o Options) (*Verifier, error) {
	v := &Verifier{maxTTL: o.MaxTTL}
	var methods []string
	if o.Secret != "" {
		v.secret = []byte(o.Secret)
		methods = append(methods, AlgHS256)
	}
	if o.PublicKeyFile != "" {
		k, err := loadPublicKeyFile(o.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		v.file = k
	}
	if o.JWKSURL != "" {
		if err := checkJWKSURL(o.JWKSURL); err != nil {
			return nil, err
		}
		j := &jwks{url: o.JWKSURL, client: jwksClient(o.HTTPClient), minRefresh: o.JWKSMinRefresh, maxAge: o.JWKSMaxAge, log: o.Logger}
		if j.minRefresh <= 0 {
			j.minRefresh = DefaultJWKSMinRefresh
		}
		if j.maxAge <= 0 {
			j.maxAge = DefaultJWKSMaxAge
		}
		if j.log == nil {
			j.log = slog.Default()
		}
		v.jwks = j
	}
	if v.file != nil || v.jwks != nil {
		methods = append(methods, AlgRS256, AlgES256, AlgEdDSA)
	}
	if len(methods) == 0 {
		return nil, errors.New("no token key: set auth.jwt_secret, auth.public_key_file or auth.jwks_url")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods), // refuses alg none and any other
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
	}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Ready reports an error while a configured JWKS has never been fetched
// (it tries, at the bounded rate). For the readiness check.
func (v *Verifier) Ready() error {
	if v.jwks == nil {
		return nil
	}
	return v.jwks.ready()
}

// Errors of Verify, worded for the 401 response.
var (
	ErrNoToken      = errors.New("a token is required (Authorization: Bearer, or ?token=)")
	ErrTokenExpired = errors.New("the token has expired")
	ErrTokenInvalid = errors.New("the token is not valid")
)

// Verify parses and checks a token: an accepted algorithm with the key
// pinned to it, a valid signature, exp in the future, iat not in the
// future, aud, iss and the lifetime when configured, and a sub that follows
// the identifier rule.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, v.keyFor)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	if err := event.ValidateID("sub", c.Subject); err != nil {
		return nil, fmt.Errorf("%w: sub must name the recipient: %v", ErrTokenInvalid, strings.TrimPrefix(err.Error(), event.ErrInvalidID.Error()+": "))
	}
	if v.maxTTL > 0 {
		start := time.Now()
		if c.IssuedAt != nil {
			start = c.IssuedAt.Time
		}
		if life := c.ExpiresAt.Sub(start); life > v.maxTTL+leeway {
			return nil, fmt.Errorf("%w: it lives %s, longer than auth.max_token_ttl (%s)", ErrTokenInvalid, life.Round(time.Second), v.maxTTL)
		}
	}
	return &c, nil
}

// keyFor picks the key of a token and refuses one whose algorithm is not
// the key's.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	// RFC 7515 §4.1.11: a token whose crit names an extension the
	// recipient does not understand must be refused; Signal understands
	// none. Checked before any key is looked up (or fetched).
	if crit, ok := t.Header["crit"]; ok {
		return nil, fmt.Errorf("the token's crit header names extensions this server does not support (%v)", crit)
	}
	alg := t.Method.Alg()
	if alg == AlgHS256 {
		if v.secret == nil {
			return nil, errors.New("HS256 tokens are not accepted here")
		}
		return v.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	var k *publicKey
	switch {
	case v.jwks != nil && kid != "":
		var err error
		if k, err = v.jwks.key(kid); err != nil {
			return nil, err
		}
	case v.file != nil:
		k = v.file
	default:
		return nil, errors.New("the token has no kid: keys of auth.jwks_url are found by kid")
	}
	if k.alg != alg {
		return nil, fmt.Errorf("the key is for %s, the token says %s", k.alg, alg)
	}
	return k.key, nil
}

// SignOptions are the claims of a token minted by Signal (signalctl token,
// the --dev sample token).
type SignOptions struct {
	Sub      string
	Rooms    []string
	TTL      time.Duration
	Audience string // aud, when the server checks one
	Issuer   string // iss; default "signalctl"
}

// Sign mints an HS256 token for sub, allowed into rooms, valid for ttl.
func Sign(secret, sub string, rooms []string, ttl time.Duration) (string, error) {
	return SignToken(secret, SignOptions{Sub: sub, Rooms: rooms, TTL: ttl})
}

// SignToken mints an HS256 token with o's claims.
func SignToken(secret string, o SignOptions) (string, error) {
	if secret == "" {
		return "", errors.New("no JWT secret: set auth.jwt_secret (SIGNAL_AUTH_JWT_SECRET) or run `signalctl serve --dev` once")
	}
	if o.Sub == "" {
		return "", errors.New("a subject (--sub) is required")
	}
	if o.TTL <= 0 {
		return "", errors.New("the lifetime (--ttl) must be positive")
	}
	if o.Issuer == "" {
		o.Issuer = "signalctl"
	}
	now := time.Now()
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   o.Sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(o.TTL)),
			Issuer:    o.Issuer,
		},
		Rooms: o.Rooms,
	}
	if o.Audience != "" {
		c.Audience = jwt.ClaimStrings{o.Audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
}

// BearerToken returns the credential of "Authorization: Bearer X".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
