package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the database of one Signal deployment.
type Store struct {
	Pool  *pgxpool.Pool
	parts partitionCache // partitions of notifications known to exist
	// revoke (members.revoke_on_remove) stages the removals of revoked
	// notifications; nil: a removed member keeps them (revoke.go).
	revoke Stager
}

// Open connects a pool to url and checks that the server answers.
func Open(ctx context.Context, url string, maxConns int32) (*Store, error) {
	return OpenWithParams(ctx, url, maxConns, nil)
}

// ServeParams are the session settings of serve's pool. Its queries by
// recipient meet every partition of notifications (one per day kept):
// planning them costs milliseconds, and PostgreSQL plans a prepared
// statement five times for its parameters before it keeps a generic plan.
// The inbox's queries are written for their generic plans (tested in
// inbox_plan_test.go): plan them once per connection.
var ServeParams = map[string]string{"plan_cache_mode": "force_generic_plan"}

// OpenWithParams is Open with session settings (run-time parameters).
func OpenWithParams(ctx context.Context, url string, maxConns int32, params map[string]string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database.url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	for k, v := range params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "signal"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		if e := explainConnect(url, err); e != err {
			return nil, e
		}
		return nil, fmt.Errorf("connect to database %s: %w", Redact(url), err)
	}
	return &Store{Pool: pool}, nil
}

// Close closes the pool.
func (s *Store) Close() { s.Pool.Close() }

// Ping checks the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.Pool.Ping(ctx) }

// EnsureDatabase creates the database named in url when it does not exist,
// connecting to the server's "postgres" database to do so. It reports
// whether it created one.
func EnsureDatabase(ctx context.Context, rawURL string) (bool, error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return false, fmt.Errorf("database.url: %w", err)
	}
	name := cfg.Database
	if name == "" || name == "postgres" {
		return false, nil
	}
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("connect to %s to create database %q: %w", Redact(rawURL), name, err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %q: %w", name, err)
	}
	if exists {
		return false, nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created meanwhile
			return false, nil
		}
		return false, fmt.Errorf("create database %q: %w", name, err)
	}
	return true, nil
}

// Redact hides the password of a database URL for messages and logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i := strings.Index(raw, "password="); i >= 0 {
			return raw[:i] + "password=xxxxx"
		}
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// IsTransient reports whether err is worth retrying: the server is away, the
// connection broke, or the transaction lost a race. Data errors (class 22)
// and constraint violations (class 23) are not: retrying cannot fix them.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "22", "23", "42", "2B", "2F", "P0", "XX":
			return false
		}
		return true // 08 connection, 40 serialization/deadlock, 53 resources, 57 shutdown, ...
	}
	return true // network errors, timeouts, closed pool
}
