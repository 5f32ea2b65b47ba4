package pgcluster

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
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
