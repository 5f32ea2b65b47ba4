package cli

import (
	"context"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/daemon"
)

// ServeOptions are serve's inputs.
type ServeOptions struct {
	g     *globals
	Dev   bool
	flags map[string]*pflag.Flag
}

func newCmdServe(g *globals) *cobra.Command {
	o := &ServeOptions{g: g}
	cmd := &cobra.Command{
		Use:   "serve [--dev]",
		Short: "Run the daemon: Kafka consumer, WebSocket server and REST API",
		Long: `Run the daemon: consume activity events from Kafka, store one notification
per recipient in PostgreSQL and push each to its recipient's WebSocket room.

The first SIGTERM or SIGINT shuts down gracefully: readiness fails, the batch
in hand is stored and committed, the consumer leaves its group, WebSocket
clients are closed (1001) over websocket.close_window. A second signal
ends the process at once; nothing is lost either way, since offsets are
committed only after their rows are. SIGTERM is serve's normal stop (exit
0); Ctrl-C (SIGINT) exits 130 after the same drain, as in every command.

With members.topic set (SIGNAL_MEMBERS_TOPIC), it also applies the
organization service's membership changes from that topic, in the consumer
group kafka.group_id + "-members" (docs/operations.md).

--dev starts an in-process Kafka-protocol broker on 127.0.0.1:9092, creates
and migrates the database, generates a JWT secret and an API key (kept in
the clone's .dev/state.json for the next run and for the other commands) and
prints how to connect.`,
		Example: `  signalctl serve --dev
  signalctl serve --config /etc/signal/signal.yaml
  SIGNAL_KAFKA_BROKERS=k1:9092,k2:9092 SIGNAL_AUTH_JWT_SECRET=… SIGNAL_API_KEYS=… signalctl serve`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{stopsOnSIGTERM: "yes"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serveRun(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Dev, "dev", false, "development mode: embedded Kafka, database created and migrated, generated secrets")
	f.String("http-addr", "", "listen address (http.addr)")
	f.StringSlice("brokers", nil, "Kafka seed brokers, or \"embedded\" (kafka.brokers)")
	f.String("database-url", "", "PostgreSQL URL (database.url)")
	f.String("topic", "", "Kafka topic (kafka.topic)")
	o.flags = map[string]*pflag.Flag{
		"http.addr": f.Lookup("http-addr"), "kafka.brokers": f.Lookup("brokers"),
		"database.url": f.Lookup("database-url"), "kafka.topic": f.Lookup("topic"),
	}
	_ = cmd.RegisterFlagCompletionFunc("brokers", fixedValues("embedded", "127.0.0.1:9092"))
	return cmd
}

func serveRun(ctx context.Context, o *ServeOptions) error {
	cfg, err := o.g.loadQuiet(o.flags)
	if err != nil {
		return err
	}
	log := o.g.logger(cfg)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	return daemon.Run(ctx, daemon.Options{Config: cfg, Dev: o.Dev, Logger: log, Out: o.g.io.Out, Version: version})
}
