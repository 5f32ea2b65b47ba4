package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/devstate"
)

func TestTokenMintsAVerifiableToken(t *testing.T) {
	const secret = "token-test-secret-0123456789"
	cases := []struct {
		name     string
		args     []string
		rooms    []string
		ttl      time.Duration
		mayJoin  []string
		mayNotIn []string
		warning  string // on stderr; "" for none
	}{
		{
			name: "defaults", args: []string{"--sub", "u1"}, ttl: 24 * time.Hour,
			mayJoin: []string{"signal/notification/u1"}, mayNotIn: []string{"signal/notification/u2", "lobby"},
		},
		{
			name: "rooms and ttl", args: []string{"--sub", "qa-bot", "--room", "signal/notification/*", "--room", "lobby", "--ttl", "1h"},
			rooms: []string{"signal/notification/*", "lobby"}, ttl: time.Hour,
			mayJoin:  []string{"signal/notification/qa-bot", "signal/notification/u7", "lobby"},
			mayNotIn: []string{"lobby-2", "signal/other"},
			warning:  `Warning: --room "signal/notification/*" opens the notification rooms of other recipients, not only signal/notification/qa-bot`,
		},
		{
			name: "every room", args: []string{"--sub", "qa", "--room", "*"}, rooms: []string{"*"}, ttl: 24 * time.Hour,
			mayJoin: []string{"signal/notification/u7", "ops/a"}, warning: `Warning: --room "*" opens the notification rooms of other recipients`,
		},
		{
			name: "a pattern under a recipient's room", args: []string{"--sub", "u1", "--room", "signal/notification/u1/*"}, rooms: []string{"signal/notification/u1/*"}, ttl: 24 * time.Hour,
			mayJoin: []string{"signal/notification/u1/x"}, mayNotIn: []string{"signal/notification/u10"}, warning: "opens the notification rooms of other recipients",
		},
		{
			name: "a star inside a segment is no wildcard", args: []string{"--sub", "u1", "--room", "signal/notification/u1*"}, rooms: []string{"signal/notification/u1*"}, ttl: 24 * time.Hour,
			mayNotIn: []string{"signal/notification/u10", "signal/notification/u1-admin"},
			warning:  `Warning: --room "signal/notification/u1*" allows only the room of that exact name`,
		},
		{
			name: "a pattern of other rooms is quiet", args: []string{"--sub", "u1", "--room", "ops/*"}, rooms: []string{"ops/*"}, ttl: 24 * time.Hour,
			mayJoin: []string{"ops/a", "ops/a/b"}, mayNotIn: []string{"ops", "opsx", "signal/notification/u2"},
		},
		{
			name: "a room with a comma stays one room", args: []string{"--sub", "u2", "--room", "a,b", "--ttl", "90s"},
			rooms: []string{"a,b"}, ttl: 90 * time.Second, mayJoin: []string{"a,b"}, mayNotIn: []string{"a", "b"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			t.Setenv("SIGNAL_AUTH_JWT_SECRET", secret)
			r := run(t, append([]string{"token"}, tc.args...)...)
			r.wantCode(t, 0)
			if tc.warning == "" && r.Stderr != "" {
				t.Errorf("stderr = %q, want nothing", r.Stderr)
			}
			if tc.warning != "" && !strings.Contains(r.Stderr, tc.warning) {
				t.Errorf("stderr = %q, want %q", r.Stderr, tc.warning)
			}
			tok, rest, _ := strings.Cut(r.Stdout, "\n")
			if rest != "" || tok == "" {
				t.Fatalf("stdout = %q, want the token on one line", r.Stdout)
			}
			c, err := auth.NewVerifier(secret).Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != tc.args[1] {
				t.Errorf("sub = %q, want %q", c.Subject, tc.args[1])
			}
			if strings.Join(c.Rooms, "|") != strings.Join(tc.rooms, "|") {
				t.Errorf("rooms = %q, want %q", c.Rooms, tc.rooms)
			}
			if exp := time.Until(c.ExpiresAt.Time); exp > tc.ttl+time.Second || exp < tc.ttl-5*time.Second {
				t.Errorf("expires in %s, want %s", exp, tc.ttl)
			}
			for _, room := range tc.mayJoin {
				if !c.MayJoin(room) {
					t.Errorf("may not join %q, want allowed", room)
				}
			}
			for _, room := range tc.mayNotIn {
				if c.MayJoin(room) {
					t.Errorf("may join %q, want refused", room)
				}
			}
			if _, err := auth.NewVerifier("another-secret").Verify(tok); err == nil {
				t.Error("a verifier with another secret accepts the token")
			}
		})
	}
}

func TestTokenSecretSources(t *testing.T) {
	t.Run("config file", func(t *testing.T) {
		isolate(t)
		cfg := writeFile(t, "signal.yaml", "auth:\n  jwt_secret: from-the-file\n")
		r := run(t, "token", "--sub", "u1", "--config", cfg)
		r.wantCode(t, 0)
		if _, err := auth.NewVerifier("from-the-file").Verify(strings.TrimSpace(r.Stdout)); err != nil {
			t.Errorf("Verify with the file's secret: %v", err)
		}
	})
	t.Run("dev state when nothing is configured", func(t *testing.T) {
		path := isolate(t)
		ds, err := devstate.LoadOrCreate()
		if err != nil {
			t.Fatal(err)
		}
		r := runWith(t, runOpts{outTTY: true, errTTY: true}, "token", "--sub", "u1")
		r.wantCode(t, 0)
		r.wantStderr(t, "Using the development secret from "+path)
		if _, err := auth.NewVerifier(ds.JWTSecret).Verify(strings.TrimSpace(r.Stdout)); err != nil {
			t.Errorf("Verify with the dev state secret: %v", err)
		}
	})
	t.Run("dev state says nothing when the token is captured by $(…)", func(t *testing.T) {
		isolate(t)
		if _, err := devstate.LoadOrCreate(); err != nil {
			t.Fatal(err)
		}
		r := runWith(t, runOpts{errTTY: true}, "token", "--sub", "u1")
		r.wantCode(t, 0)
		if r.Stderr != "" || strings.Count(r.Stdout, ".") != 2 {
			t.Errorf("stdout %q, stderr %q: want the token alone", r.Stdout, r.Stderr)
		}
	})
	t.Run("configured secret wins over dev state", func(t *testing.T) {
		isolate(t)
		if _, err := devstate.LoadOrCreate(); err != nil {
			t.Fatal(err)
		}
		t.Setenv("SIGNAL_AUTH_JWT_SECRET", "configured")
		r := run(t, "token", "--sub", "u1")
		r.wantCode(t, 0)
		if r.Stderr != "" {
			t.Errorf("stderr = %q, want nothing (the dev state is not used)", r.Stderr)
		}
		if _, err := auth.NewVerifier("configured").Verify(strings.TrimSpace(r.Stdout)); err != nil {
			t.Errorf("Verify with the configured secret: %v", err)
		}
	})
}

func TestTokenErrors(t *testing.T) {
	cases := []struct {
		name   string
		secret string
		args   []string
		code   int
		want   string
	}{
		{"no secret anywhere", "", []string{"--sub", "u1"}, 1, "auth.jwt_secret"},
		{"sub missing", "s", nil, 2, `required flag(s) "sub" not set`},
		{"sub empty", "s", []string{"--sub", ""}, 2, "--sub"},
		{"sub too long", "s", []string{"--sub", strings.Repeat("x", 300)}, 2, "--sub"},
		{"ttl zero", "s", []string{"--sub", "u1", "--ttl", "0s"}, 2, "--ttl"},
		{"ttl negative", "s", []string{"--sub", "u1", "--ttl", "-1h"}, 2, "--ttl"},
		{"ttl not a duration", "s", []string{"--sub", "u1", "--ttl", "tomorrow"}, 2, "--ttl"},
		{"positional argument", "s", []string{"--sub", "u1", "extra"}, 2, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t) // dev state file absent
			t.Setenv("SIGNAL_AUTH_JWT_SECRET", tc.secret)
			r := run(t, append([]string{"token"}, tc.args...)...)
			r.wantCode(t, tc.code)
			r.wantStderr(t, tc.want)
			if r.Stdout != "" {
				t.Errorf("stdout = %q, want no token", r.Stdout)
			}
		})
	}
}

func TestTokenFollowsTheServersClaimRules(t *testing.T) {
	const secret = "token-test-secret-0123456789-abcdef"
	isolate(t)
	t.Setenv("SIGNAL_AUTH_JWT_SECRET", secret)
	t.Setenv("SIGNAL_AUTH_AUDIENCE", "signal-ws")
	t.Setenv("SIGNAL_AUTH_ISSUER", "https://id.example")
	t.Setenv("SIGNAL_AUTH_MAX_TOKEN_TTL", "2h")
	r := run(t, "token", "--sub", "u1", "--ttl", "1h")
	r.wantCode(t, 0)
	v, err := auth.New(auth.Options{Secret: secret, Audience: "signal-ws", Issuer: "https://id.example", MaxTTL: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(strings.TrimSpace(r.Stdout)); err != nil {
		t.Errorf("the server's verifier refuses the token: %v", err)
	}
	r = run(t, "token", "--sub", "u1", "--ttl", "3h")
	r.wantCode(t, 2)
	r.wantStderr(t, "--ttl 3h0m0s is longer than auth.max_token_ttl (2h0m0s)")
}
