package cli_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/signal-notify/signal/internal/pgtest"
)

// Mistakes in the configuration are named before anything is connected to
// (issue 27, items 4 and 12): an unknown key of the file and a broken
// template stop every command with exit 1 — serve before it reaches the
// database (here an address where nothing listens) — and a SIGNAL_
// variable that names no key is warned about, with the closest key.
func TestConfigMistakesAreNamedBeforeConnecting(t *testing.T) {
	nowhere := "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
	for _, tc := range []struct {
		name, config string
		args         []string
		want         []string
	}{
		{"a typo in the file", "http:\n  adr: 127.0.0.1:9999\n", []string{"serve", "--dev", "--database-url", nowhere},
			[]string{"line 2: unknown key http.adr (did you mean http.addr?)"}},
		{"a misspelled template field", "templates:\n  REFUND_ISSUED:\n    content: \"{{.Actor.Nmae}} refunded\"\n",
			[]string{"serve", "--dev", "--database-url", nowhere},
			[]string{"template REFUND_ISSUED content: {{.Actor.Nmae}}: Actor has no field Nmae (did you mean Name?)"}},
		{"a misspelled template key", "templates:\n  REFUND_ISSUED:\n    contnet: \"x\"\n",
			[]string{"deadletters", "replay", "--all", "--database-url", nowhere},
			[]string{"unknown key templates.REFUND_ISSUED.contnet (did you mean templates.REFUND_ISSUED.content?)"}},
		{"an unparsable template", "templates:\n  X:\n    content: \"{{.Actor.Name\"\n",
			[]string{"serve", "--dev", "--database-url", nowhere}, []string{"template X content"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			r := run(t, append(tc.args, "--config", writeFile(t, "signal.yaml", tc.config))...)
			r.wantCode(t, 1)
			r.wantStderr(t, tc.want...)
			for _, never := range []string{"connect", "127.0.0.1:1", "Is PostgreSQL running"} {
				if strings.Contains(r.Stderr, never) {
					t.Errorf("stderr mentions %q: the mistake was found after connecting:\n%s", never, r.Stderr)
				}
			}
		})
	}

	isolate(t)
	t.Setenv("SIGNAL_SERVR", "http://127.0.0.1:1")
	t.Setenv("SIGNAL_AUTH_JWT_SECRET", longSecret)
	r := run(t, "token", "--sub", "u1")
	r.wantCode(t, 0)
	r.wantStderr(t, "Warning: SIGNAL_SERVR is set but is not a configuration variable: it changes nothing (did you mean SIGNAL_SERVER?)")
}

// serve --dev's hint fits the failure (issue 27, item 2): a server that
// runs and refuses the password is not told to start PostgreSQL, and an
// address where nothing listens is.
func TestServeDevSaysWhyTheDatabaseFailed(t *testing.T) {
	isolate(t)
	db := pgtest.NewDatabase(t)
	u, _ := url.Parse(db)
	u.User = url.UserPassword(u.User.Username(), "not-the-password")
	r := run(t, "serve", "--dev", "--http-addr", "127.0.0.1:0", "--brokers", "127.0.0.1:1", "--database-url", u.String())
	r.wantCode(t, 1)
	r.wantStderr(t, "password authentication failed", "PostgreSQL at "+u.Host+" is running but refused user", "bin/signalctl dev-db up prints its URL")
	if strings.Contains(r.Stderr, "Is PostgreSQL running") || strings.Contains(r.Stderr, "is PostgreSQL running") {
		t.Errorf("a running server that refused the password is told to start PostgreSQL:\n%s", r.Stderr)
	}

	isolate(t)
	r = run(t, "serve", "--dev", "--http-addr", "127.0.0.1:0", "--brokers", "127.0.0.1:1", "--database-url", "postgres://postgres@127.0.0.1:1/signal?sslmode=disable")
	r.wantCode(t, 1)
	r.wantStderr(t, "Nothing answers at 127.0.0.1:1: is PostgreSQL running? `make run` (or `make db`) starts a local one")
}
