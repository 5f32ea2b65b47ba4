package pgcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The cluster is started and stopped through a relative folder, as
// `make run` and `make db-stop` do.
func TestStartReuseAndStopWithARelativeFolder(t *testing.T) {
	// A folder the postgres user may enter (t.TempDir's are private to root).
	base, err := os.MkdirTemp("", "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(base)
	c, err := Start(context.Background(), Options{Dir: "pg"})
	if err != nil {
		t.Fatal(err)
	}
	if port, ok := Running("pg"); !ok || port != c.Port {
		t.Fatalf("Running = %d, %v; want %d, true", port, ok, c.Port)
	}
	again, err := Start(context.Background(), Options{Dir: "pg"})
	if err != nil || again.Port != c.Port {
		t.Fatalf("a second Start must reuse the running cluster: %v %+v", err, again)
	}
	if err := (&Cluster{Dir: "pg", Port: c.Port}).Stop(); err != nil {
		t.Fatal(err)
	}
	if _, ok := Running("pg"); ok {
		t.Error("still running after Stop")
	}
	if _, err := os.Stat(filepath.Join(base, "pg", "data", "PG_VERSION")); err != nil {
		t.Errorf("the data folder must stay for the next start: %v", err)
	}
}

// The development cluster accepts only the account that started it: the
// socket folder is private, and TCP needs the password kept in the folder.
func TestOnlyTheOwnerMayConnect(t *testing.T) {
	base, err := os.MkdirTemp("", "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil { // the postgres user must enter it when root
		t.Fatal(err)
	}
	dir := filepath.Join(base, "pg")
	ctx := context.Background()
	c, err := Start(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })

	connect := func(url string) error {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			conn.Close(ctx)
		}
		return err
	}
	noPassword := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
	wrongPassword := fmt.Sprintf("postgres://postgres:guess@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
	t.Run("TCP without the password is refused", func(t *testing.T) {
		if err := connect(noPassword); err == nil || !strings.Contains(err.Error(), "password") {
			t.Errorf("connect without a password: %v, want a password failure", err)
		}
		if err := connect(wrongPassword); err == nil || !strings.Contains(err.Error(), "28P01") {
			t.Errorf("connect with a wrong password: %v, want 28P01", err)
		}
	})
	t.Run("the cluster's URL carries the password", func(t *testing.T) {
		if err := connect(c.URL); err != nil {
			t.Fatal(err)
		}
		if pw, err := Password(dir); err != nil || pw != c.Password || len(pw) < 32 {
			t.Errorf("Password = %q, %v; want the cluster's, at least 32 characters", pw, err)
		}
	})
	t.Run("the folder, the socket and the password file are private", func(t *testing.T) {
		for _, p := range []string{dir, filepath.Join(dir, PasswordFile), filepath.Join(dir, fmt.Sprintf(".s.PGSQL.%d", c.Port))} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm&0o077 != 0 {
				t.Errorf("%s has mode %v: group and others must have no access", p, perm)
			}
		}
	})
	t.Run("another local account cannot use the socket", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to act as another account")
		}
		psql, err := exec.LookPath("psql")
		if err != nil {
			t.Skip("psql is not installed")
		}
		out, err := exec.Command("runuser", "-u", "nobody", "--", psql, "-h", dir, "-p", strconv.Itoa(c.Port), "-U", "postgres", "-d", "postgres", "-c", "SELECT 1").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("psql as nobody: %v\n%s\nwant Permission denied", err, out)
		}
	})
	t.Run("a cluster left open by an older signalctl is secured at the next start", func(t *testing.T) {
		// What older versions wrote: trust for everyone, no password.
		os.WriteFile(filepath.Join(dir, "data", "pg_hba.conf"), []byte("local all all trust\nhost all all 127.0.0.1/32 trust\n"), 0o600)
		if owner, _ := serverUser(); owner != nil {
			chownTree(filepath.Join(dir, "data", "pg_hba.conf"), owner)
		}
		conn, err := pgx.Connect(ctx, c.URL)
		if err != nil {
			t.Fatal(err)
		}
		conn.Exec(ctx, "SELECT pg_reload_conf()")
		conn.Close(ctx)
		os.Remove(filepath.Join(dir, PasswordFile))
		os.Chmod(dir, 0o755)
		if err := connect(noPassword); err != nil {
			t.Fatalf("the simulated old cluster must trust TCP: %v", err)
		}
		again, err := Start(ctx, Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := connect(noPassword); err == nil {
			t.Error("after Start, TCP without a password still works")
		}
		if err := connect(again.URL); err != nil {
			t.Errorf("the new URL: %v", err)
		}
		if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
			t.Errorf("folder mode %v after Start, want 0700", fi.Mode().Perm())
		}
	})
}

// As root the server runs as postgres, who cannot enter a clone in root's
// home (0700): the cluster lives in a folder of postgres's own, and the
// folder asked for says where; Running and Stop find it from there.
func TestAFolderThePostgresUserCannotEnterGetsItsClusterElsewhere(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user")
	}
	base, err := os.MkdirTemp("", "pgcluster-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	home := filepath.Join(base, "root") // like /root: 0700, owned by root
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(base, "postgres-home")
	saved := relocationRoot
	relocationRoot = func(*user.User) string { return elsewhere }
	t.Cleanup(func() { relocationRoot = saved })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(home, "signal", ".dev", "postgres")
	c, err := Start(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatalf("start in a folder postgres cannot enter: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	if !strings.HasPrefix(c.Dir, elsewhere+string(filepath.Separator)) {
		t.Errorf("the cluster is in %s, want a folder under %s", c.Dir, elsewhere)
	}
	note, err := os.ReadFile(filepath.Join(dir, "LOCATION"))
	if err != nil || strings.TrimSpace(string(note)) != c.Dir {
		t.Errorf("%s/LOCATION = %q (%v), want %s", dir, note, err, c.Dir)
	}
	if port, ok := Running(dir); !ok || port != c.Port {
		t.Fatalf("Running(%s) = %d, %v; want %d, true", dir, port, ok, c.Port)
	}
	if again, err := Start(context.Background(), Options{Dir: dir}); err != nil || again.Port != c.Port {
		t.Fatalf("a second Start must reuse the running cluster: %v %+v", err, again)
	}
	if err := (&Cluster{Dir: dir}).Stop(); err != nil {
		t.Fatal(err)
	}
	if _, ok := Running(dir); ok {
		t.Error("still running after Stop")
	}
}
