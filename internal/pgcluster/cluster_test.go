package pgcluster

import (
	"context"
	"os"
	"path/filepath"
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
