package daemon

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/signal-notify/signal/internal/devstate"
	"github.com/signal-notify/signal/internal/store"
)

// explainDatabase adds to a failure to reach the development database the
// hint that fits it: a server that is not running is not a server that
// refused the password.
func explainDatabase(err error, url string) error {
	where := "the database server"
	user := ""
	if cfg, perr := pgx.ParseConfig(url); perr == nil {
		where = net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
		user = cfg.User
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000"):
		return fmt.Errorf("%w\nPostgreSQL at %s is running but refused user %q with the URL in use (%s). "+
			"The local cluster of make run has a password: bin/signalctl dev-db up prints its URL, and serve --dev "+
			"saves it (in %s) for the next runs and the other commands of this clone; otherwise set SIGNAL_DATABASE_URL",
			err, where, user, store.Redact(url), devstate.Path())
	case errors.Is(err, syscall.ECONNREFUSED) || isDialError(err):
		return fmt.Errorf("%w\nNothing answers at %s: is PostgreSQL running? `make run` (or `make db`) starts a local one", err, where)
	}
	return err
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
