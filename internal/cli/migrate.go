package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/store"
)

// MigrateOptions are migrate's inputs.
type MigrateOptions struct {
	g      *globals
	Action string // up, down, status, force
	N      int    // down: steps; force: version
	All    bool   // down: every migration
	Yes    bool
	Output string
	flags  map[string]*pflag.Flag
}

func newCmdMigrate(g *globals) *cobra.Command {
	o := &MigrateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "migrate up | down [N] | status | force V",
		Short: "Apply the embedded SQL migrations",
		Long: `Apply the SQL migrations compiled into signalctl (golang-migrate, pgx v5).

serve refuses to start on a schema older or newer than it was built for,
and says which command to run. Several instances may run "migrate up" at
once: golang-migrate takes a PostgreSQL advisory lock.`,
		Example: `  signalctl migrate up
  signalctl migrate status -o json
  signalctl migrate down 1
  signalctl migrate force 1   # after fixing a migration that failed half-way`,
	}
	f := cmd.PersistentFlags()
	f.String("database-url", "", "PostgreSQL URL (database.url)")
	o.flags = map[string]*pflag.Flag{"database.url": f.Lookup("database-url")}

	up := &cobra.Command{Use: "up", Short: "Apply every pending migration", Args: cobra.NoArgs,
		Example: "  signalctl migrate up\n  SIGNAL_DATABASE_URL=postgres://signal@db:5432/signal signalctl migrate up",
		RunE:    func(*cobra.Command, []string) error { o.Action = "up"; return migrateRun(o) }}
	down := &cobra.Command{Use: "down N | --all", Short: "Revert the last N migrations (or all with --all)",
		Example: "  signalctl migrate down 1\n  signalctl migrate down --all --yes",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			o.Action = "down"
			switch {
			case len(args) == 1 && o.All:
				return usageErrorf("give N or --all, not both")
			case len(args) == 1:
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 1 {
					return usageErrorf("N must be a positive number of migrations, got %q", args[0])
				}
				o.N = n
			case !o.All:
				return usageErrorf("say how many migrations to revert (N), or --all")
			}
			return migrateRun(o)
		}}
	down.Flags().BoolVar(&o.All, "all", false, "revert every migration (drops all of Signal's tables)")
	down.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	status := &cobra.Command{Use: "status", Short: "Show the schema version and the embedded migrations", Args: cobra.NoArgs,
		Example: "  signalctl migrate status\n  signalctl migrate status -o json | jq .version",
		RunE:    func(*cobra.Command, []string) error { o.Action = "status"; return migrateRun(o) }}
	addOutputFlag(status, &o.Output)
	force := &cobra.Command{Use: "force V", Short: "Mark version V as applied and clean, running nothing", Args: cobra.ExactArgs(1),
		Example: "  signalctl migrate force 2     # after fixing by hand what migration 3 left half-done\n  signalctl migrate force -- -1  # no migration applied",
		RunE: func(_ *cobra.Command, args []string) error {
			v, err := strconv.Atoi(args[0])
			if err != nil || v < -1 {
				return usageErrorf("V must be a migration version (or -1 for none), got %q", args[0])
			}
			o.Action, o.N = "force", v
			return migrateRun(o)
		}}
	cmd.AddCommand(up, down, status, force)
	return cmd
}

func migrateRun(o *MigrateOptions) error {
	if o.Action == "status" {
		if err := checkFormat(o.Output); err != nil {
			return err
		}
	}
	cfg, err := o.g.load(o.flags)
	if err != nil {
		return err
	}
	m, err := store.NewMigrator(databaseURL(cfg))
	if err != nil {
		return err
	}
	defer m.Close()
	action, ok := migrateActions[o.Action]
	if !ok {
		return nil
	}
	return action(o, m, databaseURL(cfg))
}

// migrateActions are the subcommands of migrate, by name; url is the
// database's, for the confirmation.
var migrateActions = map[string]func(o *MigrateOptions, m *store.Migrator, url string) error{
	"up":     migrateUp,
	"down":   migrateDown,
	"force":  migrateForce,
	"status": migrateStatus,
}

func migrateUp(o *MigrateOptions, m *store.Migrator, _ string) error {
	io := o.g.io
	before, _ := m.Status()
	if err := m.Up(); err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	after, _ := m.Status()
	if after.Version == before.Version {
		fmt.Fprintf(io.ErrOut, "Schema already at version %d: nothing to do.\n", after.Version)
	} else {
		fmt.Fprintf(io.ErrOut, "%s schema migrated from version %d to %d.\n", styled(io, "10", "✓"), before.Version, after.Version)
	}
	return nil
}

// migrateDown reverts --n migrations, or all of them, after asking
// unless --yes.
func migrateDown(o *MigrateOptions, m *store.Migrator, url string) error {
	io := o.g.io
	n := o.N
	what := fmt.Sprintf("revert %d migration(s)", n)
	if o.All {
		n, what = 0, "revert every migration and drop all of Signal's tables"
	}
	if !o.Yes {
		if !io.InTTY {
			return usageErrorf("refusing to %s without --yes (no terminal to confirm on)", what)
		}
		if !confirm(io, fmt.Sprintf("This will %s on %s. Continue?", what, store.Redact(url))) {
			return fmt.Errorf("cancelled")
		}
	}
	if err := m.Down(n); err != nil {
		return fmt.Errorf("migrate down: %w", err)
	}
	st, _ := m.Status()
	fmt.Fprintf(io.ErrOut, "Schema now at version %d.\n", st.Version)
	return nil
}

func migrateForce(o *MigrateOptions, m *store.Migrator, _ string) error {
	if err := m.Force(o.N); err != nil {
		return fmt.Errorf("migrate force: %w", err)
	}
	fmt.Fprintf(o.g.io.ErrOut, "Schema version set to %d (clean).\n", o.N)
	return nil
}

func migrateStatus(o *MigrateOptions, m *store.Migrator, _ string) error {
	io := o.g.io
	st, err := m.Status()
	if err != nil {
		return err
	}
	if o.Output == FormatJSON {
		return writeJSON(io.Out, st)
	}
	rows := [][]string{}
	for _, mg := range st.Migrations {
		state := "pending"
		if mg.Applied {
			state = "applied"
		}
		if st.Dirty && mg.Version == st.Version {
			state = "dirty"
		}
		rows = append(rows, []string{strconv.Itoa(int(mg.Version)), mg.Name, state})
	}
	printTable(io, []string{"VERSION", "NAME", "STATE"}, rows)
	fmt.Fprintf(io.ErrOut, "Schema version %d of %d%s.\n", st.Version, st.Latest, map[bool]string{true: " (dirty: run migrate force after fixing it)", false: ""}[st.Dirty])
	return nil
}
