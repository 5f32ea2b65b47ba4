package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/pgcluster"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/migrations"
)

// EnvURL names the variable that points the tests at an existing server.
const EnvURL = "SIGNAL_TEST_DATABASE_URL"

var (
	once      sync.Once
	serverCfg *pgx.ConnConfig // maintenance database of the server
	template  string
	started   *pgcluster.Cluster
	setupErr  error
)

// Main runs the package's tests and stops a cluster it started. Use it from
// TestMain: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	if started != nil {
		if err := started.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		if err := os.RemoveAll(started.Dir); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	return code
}

func setup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := os.Getenv(EnvURL)
	if url == "" {
		dir, err := os.MkdirTemp("", "signal-pgtest-")
		if err != nil {
			setupErr = err
			return
		}
		started, err = pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
		if err != nil {
			setupErr = fmt.Errorf("start a throwaway PostgreSQL (set %s to use a running server instead): %w", EnvURL, err)
			return
		}
		url = started.URL
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		setupErr = fmt.Errorf("%s: %w", EnvURL, err)
		return
	}
	cfg.Database = "postgres"
	serverCfg = cfg
	template, setupErr = ensureTemplate(ctx)
}

// ensureTemplate creates (once per server and schema) a migrated database
// that each test's database is copied from.
func ensureTemplate(ctx context.Context) (string, error) {
	h := sha256.New()
	_ = fs.WalkDir(migrations.FS, ".", func(p string, d fs.DirEntry, _ error) error {
		if !d.IsDir() {
			b, _ := fs.ReadFile(migrations.FS, p)
			h.Write([]byte(p))
			h.Write(b)
		}
		return nil
	})
	name := "signal_tmpl_" + hex.EncodeToString(h.Sum(nil))[:12]

	conn, err := pgx.ConnectConfig(ctx, serverCfg)
	if err != nil {
		return "", fmt.Errorf("connect to test server: %w", err)
	}
	defer conn.Close(ctx)
	// Test binaries of several packages may run at once: one builds it.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7301)`); err != nil {
		return "", err
	}
	defer func() { // the lock also ends with the connection, closed next
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock(7301)`)
	}()

	var ready bool
	err = conn.QueryRow(ctx, `SELECT coalesce(shobj_description(oid, 'pg_database') = 'ready', false)
		FROM pg_database WHERE datname = $1`, name).Scan(&ready)
	if err == nil && ready {
		return name, nil
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	m, err := store.NewMigrator(urlOf(name))
	if err != nil {
		return "", err
	}
	err = m.Up()
	m.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+name+" IS 'ready'"); err != nil {
		return "", err
	}
	return name, nil
}

func urlOf(db string) string {
	c := serverCfg
	u := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", c.User, c.Host, c.Port, db)
	if c.Password != "" {
		u = fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", c.User, c.Password, c.Host, c.Port, db)
	}
	return u
}

// NewDatabase returns the URL of an empty, migrated database for t, dropped
// when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "signal_t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.ConnectConfig(ctx, serverCfg)
		if err != nil {
			t.Logf("drop test database: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database: %v", err)
		}
	})
	return urlOf(name)
}

// NewEmptyDatabase is NewDatabase without the schema (migration tests).
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	url := NewDatabase(t)
	m, err := store.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Down(0); err != nil {
		t.Fatal(err)
	}
	return url
}

// Open returns a store on a new database for t.
func Open(t testing.TB) (*store.Store, string) {
	t.Helper()
	url := NewDatabase(t)
	s, err := store.Open(context.Background(), url, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, url
}
