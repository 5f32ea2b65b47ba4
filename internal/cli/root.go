package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/devstate"
	"github.com/signal-notify/signal/internal/suggest"
)

// ErrInterrupted is the cause of a command's context after Ctrl-C
// (SIGINT); ErrTerminated after SIGTERM.
var (
	ErrInterrupted = errors.New("interrupted")
	ErrTerminated  = errors.New("terminated")
)

// ExitInterrupted is the exit code of every command stopped by Ctrl-C (or
// SIGTERM) before it finished, as shells report it (128 + SIGINT).
const ExitInterrupted = 130

// exitCodesHelp closes every command's --help.
const exitCodesHelp = `
Exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted (Ctrl-C: the
command stops cleanly first). Data goes to stdout, messages to stderr.
`

// stopsOnSIGTERM marks a command for which SIGTERM is its normal end (serve):
// it exits 0 after stopping cleanly instead of ExitInterrupted.
const stopsOnSIGTERM = "signal/stops-on-sigterm"

// Main runs signalctl with the process's arguments and returns the exit code.
func Main() int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		signal.Reset(os.Interrupt, syscall.SIGTERM) // a second signal ends the process at once
		if s == syscall.SIGTERM {
			cancel(ErrTerminated)
		} else {
			cancel(ErrInterrupted)
		}
	}()
	return Execute(ctx, System(), os.Args[1:])
}

// Execute runs one command line; tests call it with their own streams.
// A context cancelled with ErrInterrupted or ErrTerminated is a stop the
// user asked for: the command ends what it does cleanly and Execute returns
// ExitInterrupted.
func Execute(ctx context.Context, io *IOStreams, args []string) int {
	root, g := newRoot(io)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && !g.running {
		// Cobra refused the command line before any command ran: unknown
		// command or flag, bad arguments, a required flag or flag group.
		var ue *usageError
		if !errors.As(err, &ue) {
			err = &usageError{err}
		}
	}
	if g.running && stoppedBySignal(ctx) {
		return interrupted(ctx, io, cmd, err)
	}
	if err != nil {
		fmt.Fprintln(io.ErrOut, styled(io, "9", "Error:"), err)
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(io.ErrOut, "Run '%s --help' for usage.\n", commandPath(root, args))
		}
	}
	return exitCode(err)
}

func stoppedBySignal(ctx context.Context) bool {
	cause := context.Cause(ctx)
	return ctx.Err() != nil && (errors.Is(cause, ErrInterrupted) || errors.Is(cause, ErrTerminated))
}

// interrupted reports a command stopped by a signal and returns its exit
// code: ExitInterrupted, or the command's own for serve on SIGTERM.
func interrupted(ctx context.Context, io *IOStreams, cmd *cobra.Command, err error) int {
	if errors.Is(context.Cause(ctx), ErrTerminated) && cmd != nil && cmd.Annotations[stopsOnSIGTERM] != "" {
		if err != nil {
			fmt.Fprintln(io.ErrOut, styled(io, "9", "Error:"), err)
		}
		return exitCode(err)
	}
	switch {
	case err == nil || (errors.Is(err, context.Canceled) && !errors.Is(err, context.Cause(ctx))):
		// The command stopped without more to say, or a call in flight
		// was cut: its error would only repeat "context canceled".
		fmt.Fprintln(io.ErrOut, styled(io, "11", "Interrupted."))
	case errors.Is(err, context.Cause(ctx)):
		fmt.Fprintln(io.ErrOut, styled(io, "11", "Interrupted:"), err)
	default:
		fmt.Fprintln(io.ErrOut, styled(io, "9", "Error:"), err)
		fmt.Fprintln(io.ErrOut, styled(io, "11", "Interrupted."))
	}
	return ExitInterrupted
}

func commandPath(root *cobra.Command, args []string) string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return root.Name()
	}
	return cmd.CommandPath()
}

// globals are the flags every command has.
type globals struct {
	io         *IOStreams
	configFile string
	flags      map[string]*pflag.Flag // persistent flags bound to config keys
	running    bool                   // a command's RunE started
}

// NewRootCmd builds the command tree.
func NewRootCmd(io *IOStreams) *cobra.Command {
	root, _ := newRoot(io)
	return root
}

func newRoot(io *IOStreams) (*cobra.Command, *globals) {
	g := &globals{io: io, flags: map[string]*pflag.Flag{}}
	root := &cobra.Command{
		Use:   "signalctl",
		Short: "Signal: activity notifications from Kafka to PostgreSQL to WebSocket",
		Long: `signalctl runs and operates Signal, the notification service.

Signal consumes activity events from Kafka, stores one notification per
recipient in PostgreSQL and pushes each one over WebSocket to the
recipient's room. A REST API sends to every client, a room or one client.`,
		Example: `  # development: embedded Kafka, local database, generated secrets
  signalctl serve --dev

  # production
  SIGNAL_KAFKA_BROKERS=k1:9092 SIGNAL_AUTH_JWT_SECRET=… SIGNAL_API_KEYS=… signalctl serve`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Every command's help ends with the exit codes.
	root.SetUsageTemplate(root.UsageTemplate() + exitCodesHelp)
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return &usageError{withFlagHint(cmd, err)} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", "", "config file (YAML); default $"+config.EnvConfigFile)
	pf.String("log-level", "info", "log level: debug, info, warn, error")
	pf.String("log-format", "text", "log format: text or json")
	g.flags["log.level"] = pf.Lookup("log-level")
	g.flags["log.format"] = pf.Lookup("log-format")
	_ = root.RegisterFlagCompletionFunc("log-level", fixedValues("debug", "info", "warn", "error"))
	_ = root.RegisterFlagCompletionFunc("log-format", fixedValues("text", "json"))
	_ = root.MarkPersistentFlagFilename("config", "yaml", "yml")

	root.AddCommand(
		newCmdServe(g),
		newCmdMigrate(g),
		newCmdProduce(g),
		newCmdMembers(g),
		newCmdToken(g),
		newCmdNotify(g),
		newCmdEvents(g),
		newCmdSend(g),
		newCmdBroadcast(g),
		newCmdClients(g),
		newCmdTail(g),
		newCmdDeadLetters(g),
		newCmdDedupe(g),
		newCmdNotifications(g),
		newCmdStatus(g),
		newCmdVersion(g),
		newCmdDevDB(g),
	)
	useOwnBashCompletion(root)
	markRunning(root, g)
	return root, g
}

// markRunning wraps every command's RunE so Execute can tell cobra's own
// refusals (usage errors, exit 2) from failures of the work (exit 1).
func markRunning(c *cobra.Command, g *globals) {
	if c.HasParent() && c.HasSubCommands() && !c.Runnable() {
		// A group such as "migrate": cobra would print its help and exit 0
		// for "migrate bogus"; refuse an unknown subcommand instead.
		c.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		}
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			g.running = true
			return run(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markRunning(sub, g)
	}
}

// databaseURL is the database the commands that read it use: database.url,
// or, while it is left at its default, the one the last `serve --dev` of
// this clone used (make run's local cluster has a password).
func databaseURL(cfg *config.Config) string {
	return devstate.DatabaseURL(cfg.Database.URL, config.DefaultDatabaseURL)
}

// load reads the configuration with the given command flags bound to
// their keys (only flags set on the command line override), and prints
// what it warns about (SIGNAL_ variables that name no key) on stderr.
func (g *globals) load(cmdFlags map[string]*pflag.Flag) (*config.Config, error) {
	cfg, err := g.loadQuiet(cmdFlags)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(g.io.ErrOut, styled(g.io, "11", "Warning:"), w)
	}
	return cfg, nil
}

// loadQuiet is load without printing the warnings (serve logs them).
func (g *globals) loadQuiet(cmdFlags map[string]*pflag.Flag) (*config.Config, error) {
	all := map[string]*pflag.Flag{}
	for k, f := range g.flags {
		all[k] = f
	}
	for k, f := range cmdFlags {
		all[k] = f
	}
	return config.Load(g.configFile, all)
}

// withFlagHint adds the closest flag of cmd to pflag's "unknown flag:
// --recipient", as cobra does for commands: "did you mean --recipients?".
func withFlagHint(cmd *cobra.Command, err error) error {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return err
	}
	var names []string
	add := func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, f.Name)
		}
	}
	cmd.Flags().VisitAll(add)
	cmd.InheritedFlags().VisitAll(add)
	if hint := suggest.Closest(name, names); hint != "" && hint != name {
		return fmt.Errorf("%w (did you mean --%s?)", err, hint)
	}
	return err
}

// logger builds the structured logger of cfg on stderr.
func (g *globals) logger(cfg *config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(cfg.Log.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(g.io.ErrOut, opts))
	}
	return slog.New(slog.NewTextHandler(g.io.ErrOut, opts))
}

func fixedValues(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// discardLogger is for library code run by short commands, whose outcome
// the command prints itself.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
