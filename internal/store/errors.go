package store

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}

// IsDataError reports whether PostgreSQL refused a value as data (SQLSTATE
// class 22: invalid text, NUL, out of range): the input's fault, not the
// server's.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22")
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// explainConnect turns a failure to connect to rawURL into words a person
// can act on where the server's code alone would not do (3D000: no such
// database). Other errors come back as they are.
func explainConnect(rawURL string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" {
		name := "(unnamed)"
		if cfg, perr := pgx.ParseConfig(rawURL); perr == nil {
			name = cfg.Database
		}
		return fmt.Errorf("the database %q does not exist on %s: create it (createdb %s, or CREATE DATABASE in psql), or let `signalctl serve --dev` create it",
			name, Redact(rawURL), name)
	}
	return err
}
