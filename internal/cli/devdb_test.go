package cli_test

import (
	"net/url"
	"testing"

	"github.com/signal-notify/signal/internal/pgtest"
)

// The hidden dev-db command is what the Makefile uses; these cases need no
// cluster of their own.
func TestDevDB(t *testing.T) {
	t.Run("up uses a server that answers", func(t *testing.T) {
		isolate(t)
		db := pgtest.NewDatabase(t)
		u, _ := url.Parse(db)
		r := run(t, "dev-db", "up", "--url", db, "--dir", t.TempDir())
		r.wantCode(t, 0)
		if r.Stdout != db+"\n" {
			t.Errorf("stdout = %q, want the URL", r.Stdout)
		}
		r.wantStderr(t, "PostgreSQL answers at "+u.Host+": using it.")
	})
	t.Run("up with a bad URL", func(t *testing.T) {
		isolate(t)
		r := run(t, "dev-db", "up", "--url", "postgres://[::1", "--dir", t.TempDir())
		r.wantCode(t, 2)
		r.wantStderr(t, "--url:")
	})
	t.Run("down without a cluster", func(t *testing.T) {
		isolate(t)
		dir := t.TempDir()
		r := run(t, "dev-db", "down", "--dir", dir)
		r.wantCode(t, 0)
		r.wantStderr(t, "No cluster is running in "+dir)
	})
	t.Run("exec passes the server and the exit status", func(t *testing.T) {
		isolate(t)
		db := pgtest.NewDatabase(t)
		t.Setenv(pgtest.EnvURL, db)
		r := run(t, "dev-db", "exec", "--", "sh", "-c", `echo "$SIGNAL_TEST_DATABASE_URL"`)
		r.wantCode(t, 0)
		if r.Stdout != db+"\n" {
			t.Errorf("stdout = %q, want %q", r.Stdout, db+"\n")
		}
		r = run(t, "dev-db", "exec", "--", "sh", "-c", "exit 3")
		r.wantCode(t, 1)
		r.wantStderr(t, "sh exited with code 3")
	})
	t.Run("exec without a command", func(t *testing.T) {
		isolate(t)
		r := run(t, "dev-db", "exec")
		r.wantCode(t, 2)
		r.wantStderr(t, "requires at least 1 arg(s)")
	})
}
