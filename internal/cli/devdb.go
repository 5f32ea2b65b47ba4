package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/signal-notify/signal/internal/devstate"
	"github.com/signal-notify/signal/internal/pgcluster"
)

// DevDBOptions are the inputs of the hidden dev-db command used by the
// Makefile: a local PostgreSQL for `make run`, a throwaway one for `make test`.
type DevDBOptions struct {
	g    *globals
	Dir  string
	Port int
	URL  string
}

func newCmdDevDB(g *globals) *cobra.Command {
	o := &DevDBOptions{g: g}
	cmd := &cobra.Command{
		Use:    "dev-db",
		Short:  "Local PostgreSQL for development and tests (used by the Makefile)",
		Hidden: true,
	}
	up := &cobra.Command{
		Use:   "up",
		Short: "Use the database server at --url if it answers, else start a cluster in --dir; print the URL to use",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return devDBUp(cmd.Context(), o) },
	}
	up.Flags().StringVar(&o.Dir, "dir", ".dev/postgres", "cluster folder")
	up.Flags().StringVar(&o.URL, "url", "postgres://postgres@127.0.0.1:5432/signal?sslmode=disable", "database URL to try first")
	down := &cobra.Command{
		Use: "down", Short: "Stop the cluster in --dir", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			port, ok := pgcluster.Running(o.Dir)
			if !ok {
				fmt.Fprintln(g.io.ErrOut, "No cluster is running in", o.Dir)
				return nil
			}
			if err := (&pgcluster.Cluster{Dir: o.Dir, Port: port}).Stop(); err != nil {
				return err
			}
			// This clone's commands stop using the stopped cluster's URL
			// (make run saves it again on its next start).
			if err := devstate.ForgetDatabase(port); err != nil {
				fmt.Fprintln(g.io.ErrOut, "Warning:", err)
			}
			return nil
		},
	}
	down.Flags().StringVar(&o.Dir, "dir", ".dev/postgres", "cluster folder")
	execCmd := &cobra.Command{
		Use:   "exec -- COMMAND [ARG...]",
		Short: "Run COMMAND with SIGNAL_TEST_DATABASE_URL set to a throwaway cluster",
		Args:  cobra.MinimumNArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return devDBExec(cmd.Context(), o, args) },
	}
	cmd.AddCommand(up, down, execCmd)
	return cmd
}

// devDBUp makes sure a server answers at o.URL's address; it starts one in
// o.Dir when nothing listens there. It prints the URL to use.
func devDBUp(ctx context.Context, o *DevDBOptions) error {
	cfg, err := pgx.ParseConfig(o.URL)
	if err != nil {
		return usageErrorf("--url: %v", err)
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if answers(ctx, o.URL) {
		fmt.Fprintf(o.g.io.ErrOut, "PostgreSQL answers at %s: using it.\n", addr)
		fmt.Fprintln(o.g.io.Out, o.URL)
		return nil
	}
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		c.Close()
		if port, ok := pgcluster.Running(o.Dir); ok && port == int(cfg.Port) {
			// Ours, from an earlier run: Start applies the current access
			// rules and gives its password.
			return devDBStart(ctx, o, int(cfg.Port))
		}
		return fmt.Errorf("something listens on %s but does not accept %s: stop it, or set SIGNAL_DATABASE_URL", addr, o.URL)
	}
	fmt.Fprintf(o.g.io.ErrOut, "Nothing answers at %s: starting a local PostgreSQL in %s …\n", addr, o.Dir)
	return devDBStart(ctx, o, int(cfg.Port))
}

// devDBStart starts (or reuses) the cluster in o.Dir and prints o.URL with
// the cluster's password: only the account that started it may connect.
func devDBStart(ctx context.Context, o *DevDBOptions, port int) error {
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: o.Dir, Port: port, Durable: true})
	if err != nil {
		return err
	}
	if abs, _ := filepath.Abs(o.Dir); c.Dir != abs {
		fmt.Fprintf(o.g.io.ErrOut, "The postgres user cannot enter %s: the cluster lives in %s (named in %s).\n",
			o.Dir, c.Dir, filepath.Join(o.Dir, "LOCATION"))
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return usageErrorf("--url: %v", err)
	}
	u.User = url.UserPassword("postgres", c.Password)
	fmt.Fprintf(o.g.io.ErrOut, "PostgreSQL is up on 127.0.0.1:%d, for this account only: password in %s (stop it with: make db-stop).\n",
		c.Port, filepath.Join(c.Dir, pgcluster.PasswordFile))
	fmt.Fprintln(o.g.io.Out, u.String())
	return nil
}

func answers(ctx context.Context, url string) bool {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return false
	}
	cfg.Database = "postgres"
	cfg.ConnectTimeout = time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

// devDBExec runs args against a throwaway cluster, unless
// SIGNAL_TEST_DATABASE_URL already names a server.
func devDBExec(ctx context.Context, o *DevDBOptions, args []string) error {
	env := os.Environ()
	if os.Getenv("SIGNAL_TEST_DATABASE_URL") == "" {
		dir, err := os.MkdirTemp("", "signal-test-pg-")
		if err != nil {
			return err
		}
		defer func() {
			if err := os.RemoveAll(dir); err != nil {
				fmt.Fprintln(o.g.io.ErrOut, "remove the throwaway PostgreSQL's folder:", err)
			}
		}()
		c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
		if err != nil {
			return err
		}
		defer func() { // a cluster left running would outlive the command
			if err := c.Stop(); err != nil {
				fmt.Fprintln(o.g.io.ErrOut, "stop the throwaway PostgreSQL:", err)
			}
		}()
		fmt.Fprintf(o.g.io.ErrOut, "Throwaway PostgreSQL on 127.0.0.1:%d for: %v\n", c.Port, args)
		env = append(env, "SIGNAL_TEST_DATABASE_URL="+c.URL)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.g.io.In, o.g.io.Out, o.g.io.ErrOut
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("%s exited with code %d", args[0], exit.ExitCode())
	}
	return err
}
