package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for golang-migrate

	"github.com/signal-notify/signal/migrations"
)

// Migration is one embedded schema step.
type Migration struct {
	Version uint   `json:"version"`
	Name    string `json:"name"`
	Applied bool   `json:"applied"`
}

// SchemaStatus is where a database's schema stands.
type SchemaStatus struct {
	Version    uint        `json:"version"` // 0: nothing applied
	Dirty      bool        `json:"dirty"`
	Latest     uint        `json:"latest"`
	Migrations []Migration `json:"migrations"`
}

// Migrator applies the embedded migrations with golang-migrate (pgx v5).
type Migrator struct {
	m  *migrate.Migrate
	db *sql.DB
}

// NewMigrator opens a migrator on the database at url.
func NewMigrator(url string) (*Migrator, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("database.url: %w", err)
	}
	drv, err := pgxmigrate.WithInstance(db, &pgxmigrate.Config{})
	if err != nil {
		db.Close()
		if e := explainConnect(url, err); e != err {
			return nil, e
		}
		return nil, fmt.Errorf("connect to database %s: %w", Redact(url), err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare migrations: %w", err)
	}
	return &Migrator{m: m, db: db}, nil
}

// Close releases the connection.
func (m *Migrator) Close() error {
	srcErr, dbErr := m.m.Close()
	return errors.Join(srcErr, dbErr)
}

// Up applies every pending migration. No change is not an error.
func (m *Migrator) Up() error { return ignoreNoChange(m.m.Up()) }

// UpTo applies the pending migrations up to version v (bench/: one
// migration's time at a time).
func (m *Migrator) UpTo(v uint) error { return ignoreNoChange(m.m.Migrate(v)) }

// Down reverts n migrations; n <= 0 reverts all of them.
func (m *Migrator) Down(n int) error {
	if n <= 0 {
		return ignoreNoChange(m.m.Down())
	}
	return ignoreNoChange(m.m.Steps(-n))
}

// Force records version v as applied and clean, without running anything:
// the way out after a migration failed half-way and was fixed by hand.
func (m *Migrator) Force(v int) error { return m.m.Force(v) }

// Status lists the embedded migrations and which are applied.
func (m *Migrator) Status() (SchemaStatus, error) {
	st := SchemaStatus{Latest: LatestVersion()}
	v, dirty, err := m.m.Version()
	if err != nil && !errors.Is(err, migrate.ErrNilVersion) {
		return st, fmt.Errorf("read schema version: %w", err)
	}
	st.Version, st.Dirty = v, dirty
	for _, mg := range Embedded() {
		mg.Applied = mg.Version <= st.Version && (!dirty || mg.Version < st.Version)
		st.Migrations = append(st.Migrations, mg)
	}
	return st, nil
}

func ignoreNoChange(err error) error {
	if errors.Is(err, migrate.ErrNoChange) {
		return nil
	}
	return err
}

var migrationFile = regexp.MustCompile(`^(\d+)_(.+)\.up\.sql$`)

// Embedded lists the migrations compiled into this binary, oldest first.
func Embedded() []Migration {
	entries, _ := fs.ReadDir(migrations.FS, ".")
	var out []Migration
	for _, e := range entries {
		if m := migrationFile.FindStringSubmatch(e.Name()); m != nil {
			v, _ := strconv.ParseUint(m[1], 10, 64)
			out = append(out, Migration{Version: uint(v), Name: m[2]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// LatestVersion is the newest embedded migration.
func LatestVersion() uint {
	all := Embedded()
	if len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Version
}

// SchemaVersion reads the applied version without taking migrate's lock.
func (s *Store) SchemaVersion(ctx context.Context) (version uint, dirty bool, err error) {
	var v int64
	err = s.Pool.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&v, &dirty)
	if err != nil {
		if isUndefinedTable(err) || errors.Is(err, pgx.ErrNoRows) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	return uint(v), dirty, nil
}

// CheckSchema returns an error an operator can act on unless the database
// has exactly the schema this binary was built for.
func (s *Store) CheckSchema(ctx context.Context) error {
	v, dirty, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	latest := LatestVersion()
	switch {
	case dirty:
		return fmt.Errorf("the database schema is dirty at version %d (a migration failed half-way): fix it, then run `signalctl migrate force %d`", v, v)
	case v < latest:
		return fmt.Errorf("the database schema is at version %d and this signalctl needs %d: run `signalctl migrate up`", v, latest)
	case v > latest:
		return fmt.Errorf("the database schema is at version %d, newer than this signalctl knows (%d): upgrade signalctl", v, latest)
	}
	return nil
}
