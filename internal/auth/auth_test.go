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

func TestVerifyAcceptsOnlyValidHS256Tokens(t *testing.T) {
	v := NewVerifier("secret")
	good, err := Sign("secret", "u1", []string{"ops/*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Minute))}}).SignedString([]byte("secret"))
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}}).SignedString([]byte("secret"))
	noSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString([]byte("secret"))
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString([]byte("secret"))
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

func TestMayJoin(t *testing.T) {
	c := &Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}, Rooms: []string{"ops/alerts", "team/*"}}
	for room, want := range map[string]bool{
		"signal/notification/u1": true, "signal/notification/u2": false, "ops/alerts": true,
		"ops/alerts/x": false, "team/": true, "team/a/b": true, "tea": false,
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
