package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/pgcluster"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

// ownDB is a PostgreSQL cluster of one test's own, to stop and start.
type ownDB struct {
	t    *testing.T
	dir  string
	Port int
	c    *pgcluster.Cluster
}

// clusterEnv is an environment on a PostgreSQL cluster of the test's own,
// migrated, with the store open on it.
func clusterEnv(t *testing.T) (*testkit.Env, *ownDB) {
	t.Helper()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "signal-owndb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	db := &ownDB{t: t, dir: dir, Port: c.Port, c: c}
	t.Cleanup(func() { db.c.Stop() })
	url := c.DatabaseURL("signal")
	migrateUp(t, url)
	st, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &testkit.Env{Broker: testkit.Broker(t), DBURL: url, Store: st}, db
}

// migrateUp creates the database at url when missing and migrates it up.
func migrateUp(t *testing.T, url string) {
	t.Helper()
	if _, err := store.EnsureDatabase(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	m, err := store.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
}

// Stop stops the cluster (fast shutdown).
func (d *ownDB) Stop() {
	d.t.Helper()
	if err := d.c.Stop(); err != nil {
		d.t.Fatal(err)
	}
}

// Start starts it again on its port.
func (d *ownDB) Start() {
	d.t.Helper()
	c, err := pgcluster.Start(context.Background(), pgcluster.Options{Dir: d.dir, Port: d.Port})
	if err != nil {
		d.t.Fatal(err)
	}
	d.c = c
}

// Restart stops it, waits down, and starts it again.
func (d *ownDB) Restart(down time.Duration) {
	d.t.Helper()
	d.Stop()
	time.Sleep(down)
	d.Start()
}
