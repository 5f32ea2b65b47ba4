package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signal-notify/signal/internal/event"
)

// Claims are what a Signal token carries.
type Claims struct {
	jwt.RegisteredClaims
	// Rooms the holder may join besides its own notification room. An entry
	// ending in "*" allows every room starting with what precedes it.
	Rooms []string `json:"rooms,omitempty"`
}

// OwnRoom is the notification room of the token's subject.
func (c *Claims) OwnRoom() string { return event.NotificationRoom(c.Subject) }

// MayJoin reports whether the token allows room.
func (c *Claims) MayJoin(room string) bool {
	if room == c.OwnRoom() {
		return true
	}
	for _, p := range c.Rooms {
		if prefix, wild := strings.CutSuffix(p, "*"); wild {
			if strings.HasPrefix(room, prefix) {
				return true
			}
		} else if p == room {
			return true
		}
	}
	return false
}

// Verifier checks tokens signed with one secret.
type Verifier struct {
	secret []byte
	parser *jwt.Parser
}

// NewVerifier returns a verifier for HS256 tokens signed with secret.
func NewVerifier(secret string) *Verifier {
	return &Verifier{
		secret: []byte(secret),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), // refuses alg none and any other
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(5*time.Second),
		),
	}
}

// Errors of Verify, worded for the 401 response.
var (
	ErrNoToken      = errors.New("a token is required (Authorization: Bearer, or ?token=)")
	ErrTokenExpired = errors.New("the token has expired")
	ErrTokenInvalid = errors.New("the token is not valid")
)

// Verify parses and checks a token: HS256, valid signature, exp in the
// future, a non-empty sub.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.secret, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	case c.Subject == "" || len(c.Subject) > event.MaxIDBytes:
		return nil, fmt.Errorf("%w: sub must name the recipient", ErrTokenInvalid)
	}
	return &c, nil
}

// Sign mints a token for sub, allowed into rooms, valid for ttl.
func Sign(secret, sub string, rooms []string, ttl time.Duration) (string, error) {
	if secret == "" {
		return "", errors.New("no JWT secret: set auth.jwt_secret (SIGNAL_AUTH_JWT_SECRET) or run `signalctl serve --dev` once")
	}
	if sub == "" {
		return "", errors.New("a subject (--sub) is required")
	}
	if ttl <= 0 {
		return "", errors.New("the lifetime (--ttl) must be positive")
	}
	now := time.Now()
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			Issuer:    "signalctl",
		},
		Rooms: rooms,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
}

// APIKeys checks API keys in constant time.
type APIKeys struct {
	sums [][32]byte
}

// NewAPIKeys holds the accepted keys.
func NewAPIKeys(keys []string) *APIKeys {
	k := &APIKeys{}
	for _, key := range keys {
		k.sums = append(k.sums, sha256.Sum256([]byte(key)))
	}
	return k
}

// Valid reports whether key is one of the accepted keys. Keys are compared
// as SHA-256 sums so neither their content nor their length leaks through
// timing; every key is compared, whatever matched.
func (k *APIKeys) Valid(key string) bool {
	if key == "" {
		return false
	}
	sum := sha256.Sum256([]byte(key))
	ok := 0
	for i := range k.sums {
		ok |= subtle.ConstantTimeCompare(sum[:], k.sums[i][:])
	}
	return ok == 1
}

// BearerToken returns the credential of "Authorization: Bearer X".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
