package pgcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// ReplicaName is the application name a replica connects to its primary
// with, and what a primary's synchronous_standby_names waits for.
const ReplicaName = "signal_replica"

// StartReplica makes a streaming replica of primary in o.Dir
// (pg_basebackup) and starts it; it serves reads only until Promote. With
// synchronous, the primary's commits wait for the replica to have them
// (synchronous_standby_names): a failover to it loses no committed
// transaction. For tests of a PostgreSQL failover.
func StartReplica(ctx context.Context, primary *Cluster, o Options, synchronous bool) (*Cluster, error) {
	owner, err := serverUser()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if dir, err = place(ctx, dir, owner); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, PasswordFile), []byte(primary.Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s application_name=%s", primary.Port, primary.Password, ReplicaName)
	if out, err := run(ctx, owner, "pg_basebackup", "-D", data, "-d", conninfo, "-X", "stream", "-R", "-c", "fast"); err != nil {
		return nil, fmt.Errorf("pg_basebackup: %w\n%s", err, out)
	}
	// -R wrote standby.signal and primary_conninfo; make sure the latter
	// names the replica (synchronous_standby_names matches on it).
	auto := filepath.Join(data, "postgresql.auto.conf")
	f, err := os.OpenFile(auto, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(f, "primary_conninfo = '%s'\n", conninfo)
	f.Close()
	if err != nil {
		return nil, err
	}
	if err := writeHBA(data, owner); err != nil {
		return nil, err
	}
	c, err := startServer(ctx, owner, dir, o)
	if err != nil {
		return nil, err
	}
	c.Password = primary.Password
	c.URL = c.DatabaseURL("postgres")
	if synchronous {
		if err := primary.exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = '"+ReplicaName+"'", "SELECT pg_reload_conf()"); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// exec runs statements on the cluster's postgres database.
func (c *Cluster) exec(ctx context.Context, stmts ...string) error {
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// Promote makes a replica the primary (pg_ctl promote), and waits for it.
func (c *Cluster) Promote(ctx context.Context) error {
	owner, err := serverUser()
	if err != nil {
		return err
	}
	if out, err := run(ctx, owner, "pg_ctl", "-D", filepath.Join(resolve(c.Dir), "data"), "-w", "promote"); err != nil {
		return fmt.Errorf("pg_ctl promote: %w\n%s", err, out)
	}
	return nil
}

// Kill stops the server at once, as a crash would (immediate mode: no
// checkpoint, sessions cut).
func (c *Cluster) Kill() error {
	owner, err := serverUser()
	if err != nil {
		return err
	}
	if out, err := run(context.Background(), owner, "pg_ctl", "-D", filepath.Join(resolve(c.Dir), "data"), "-m", "immediate", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop -m immediate: %w\n%s", err, out)
	}
	return nil
}

// Restart stops the server (fast mode) and starts it again on its port.
func (c *Cluster) Restart(ctx context.Context, o Options) error {
	if err := c.Stop(); err != nil {
		return err
	}
	owner, err := serverUser()
	if err != nil {
		return err
	}
	o.Port = c.Port
	_, err = startServer(ctx, owner, resolve(c.Dir), o)
	return err
}

// HostPort is the cluster's address, for multi-host URLs.
func (c *Cluster) HostPort() string { return "127.0.0.1:" + strconv.Itoa(c.Port) }
