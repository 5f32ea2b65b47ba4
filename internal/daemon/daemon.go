package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/console"
	"github.com/signal-notify/signal/internal/devstate"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/httpapi"
	"github.com/signal-notify/signal/internal/hub"
	"github.com/signal-notify/signal/internal/ingest"
	"github.com/signal-notify/signal/internal/kafka"
	"github.com/signal-notify/signal/internal/metrics"
	"github.com/signal-notify/signal/internal/relay"
	"github.com/signal-notify/signal/internal/store"
)

// Options configure a serve run.
type Options struct {
	Config *config.Config
	// Dev: embedded broker, database created and migrated, generated secrets.
	Dev    bool
	Logger *slog.Logger
	// Out receives the development banner (how to connect).
	Out io.Writer
	// Version is reported by GET /status.
	Version string
	// OnReady, when set, is called once everything accepts work.
	OnReady func(Info)
}

// Info describes a running instance.
type Info struct {
	HTTPAddr    string   // bound address of the HTTP listener
	InstanceID  string   // this instance's id among the instances
	Brokers     []string // Kafka seed brokers in use
	DevToken    string   // --dev: a sample token for recipient u1
	DevAPIKey   string   // --dev: the API key
	DatabaseURL string
}

// Run serves until ctx ends, then shuts down in order.
func Run(ctx context.Context, o Options) error {
	cfg := *o.Config
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	info := Info{DatabaseURL: store.Redact(cfg.Database.URL)}

	if o.Dev {
		if err := prepareDev(ctx, &cfg, &info, log); err != nil {
			return err
		}
	}
	if err := checkServeConfig(&cfg); err != nil {
		return err
	}

	// Kafka input.
	brokers := cfg.Kafka.Brokers
	if cfg.UsesEmbeddedBroker() {
		emb, err := kafka.StartEmbedded(cfg.Kafka.EmbeddedPort, cfg.Kafka.Topic)
		if err != nil {
			return err
		}
		defer emb.Close()
		brokers = []string{emb.Addr}
		log.Warn("embedded Kafka-protocol broker started: in memory, for development only", "addr", emb.Addr, "topic", cfg.Kafka.Topic)
	}
	info.Brokers = brokers

	// Database.
	st, err := store.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return err
	}

	renderer, err := event.NewRenderer(cfg.Templates)
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	m := metrics.New()
	verifier := auth.NewVerifier(cfg.Auth.JWTSecret)
	ws := cfg.WebSocket
	h := hub.New(hub.Options{
		MaxMessageBytes: ws.MaxMessageBytes, MaxRooms: ws.MaxRooms, QueueBytes: ws.QueueBytes,
		ReplayLimit: ws.ReplayLimit, PingInterval: ws.PingInterval,
		MaxConnections: ws.MaxConnections, MaxConnectionsPerSubject: ws.MaxConnectionsPerSubject,
		UpgradeRate: ws.UpgradeRate, UpgradeBurst: ws.UpgradeBurst, ActionRate: ws.ActionRate, ActionBurst: ws.ActionBurst,
		Verify:  verifier.Verify,
		History: history{store: st},
		Metrics: m,
		Logger:  log.With("component", "hub"),
	})
	defer h.Close()
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	defer ln.Close()
	instanceID := newInstanceID()
	rel := relay.New(relay.Options{
		Store: st, Hub: h, InstanceID: instanceID, HTTPAddr: ln.Addr().String(), Heartbeat: cfg.Cluster.Heartbeat, DeadAfter: cfg.Cluster.DeadAfter,
		Metrics: m, Logger: log.With("component", "relay"),
	})
	h.SetPresence(rel)
	push := &pusher{hub: h, remote: rel, log: log}
	ing := ingest.New(ingest.Options{
		Store: st, Renderer: renderer, Pusher: push, RepushWindow: cfg.Ingest.RepushWindow,
		Metrics: m, Logger: log.With("component", "ingest"),
	})

	clientOpts, err := kafka.ClientOpts(cfg.Kafka, brokers)
	if err != nil {
		return err
	}
	consumer, err := kafka.NewConsumer(kafka.ConsumerOptions{
		Client: clientOpts, Topic: cfg.Kafka.Topic, Group: cfg.Kafka.GroupID,
		ResetOffset: cfg.Kafka.ResetOffset, BatchSize: cfg.Kafka.BatchSize, SessionTimeout: cfg.Kafka.SessionTimeout,
		RetryMin: cfg.Ingest.RetryMin, RetryMax: cfg.Ingest.RetryMax,
		Handler: kafkaHandler{ing}, Metrics: m, Logger: log.With("component", "consumer"),
	})
	if err != nil {
		return err
	}

	var draining atomic.Bool
	api := httpapi.New(httpapi.Options{
		Hub: h, Relay: rel, Inbox: st,
		Verifier: verifier, APIKeys: auth.NewAPIKeys(cfg.Auth.APIKeys),
		Metrics: m, Logger: log.With("component", "http"), Draining: draining.Load,
		Console:      console.Handler(),
		StatusSource: statusSource(instanceID, o.Version, cfg.Kafka.Topic, cfg.Kafka.GroupID, time.Now(), consumer, st),
		Checks: []httpapi.Check{
			{Name: "database", Check: st.Ping},
			{Name: "kafka", Check: func(ctx context.Context) error {
				if err := consumer.Client().Ping(ctx); err != nil {
					return fmt.Errorf("brokers unreachable: %w", err)
				}
				if joined, _ := consumer.Joined(); !joined {
					return errors.New("joining the consumer group")
				}
				return consumer.Err()
			}},
			{Name: "relay", Check: func(context.Context) error { return rel.Err() }},
		},
	})
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	info.HTTPAddr = ln.Addr().String()
	info.InstanceID = instanceID

	// consumeCtx ends the consumer; the HTTP side outlives it so in-flight
	// pushes still reach clients.
	consumeCtx, stopConsuming := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsuming()
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelay()
	g, gctx := errgroup.WithContext(context.WithoutCancel(ctx))
	consumerDone := make(chan struct{})
	g.Go(func() error {
		defer close(consumerDone)
		return consumer.Run(consumeCtx)
	})
	relayDone := make(chan struct{})
	g.Go(func() error {
		defer close(relayDone)
		return rel.Run(relayCtx)
	})
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})

	if cfg.Debug.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.Debug.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	log.Info("signal serving", "instance", instanceID, "http", info.HTTPAddr, "brokers", brokers, "topic", cfg.Kafka.Topic, "group", cfg.Kafka.GroupID, "database", info.DatabaseURL)
	if o.Dev {
		printBanner(o.Out, &cfg, info)
	}
	if o.OnReady != nil {
		o.OnReady(info)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing the batch in hand, then closing clients")
	case <-gctx.Done():
		log.Error("a component failed; shutting down")
	}
	draining.Store(true)
	stopConsuming()
	select {
	case <-consumerDone:
	case <-time.After(30 * time.Second):
		log.Error("consumer did not stop within 30s")
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second+cfg.WebSocket.CloseWindow)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	h.Shutdown(shutCtx, cfg.WebSocket.CloseWindow)
	stopRelay() // after the clients: it unregisters this instance last
	<-relayDone
	err = g.Wait()
	log.Info("signal stopped")
	return err
}

// checkServeConfig names the first missing setting serve cannot do without.
func checkServeConfig(cfg *config.Config) error {
	switch {
	case len(cfg.Kafka.Brokers) == 0:
		return errors.New("no Kafka brokers: set kafka.brokers or SIGNAL_KAFKA_BROKERS (\"embedded\" for the in-process development broker), or run serve --dev")
	case cfg.Auth.JWTSecret == "":
		return errors.New("no JWT secret: set auth.jwt_secret or SIGNAL_AUTH_JWT_SECRET, or run serve --dev")
	case len(cfg.Auth.APIKeys) == 0:
		return errors.New("no API key: set auth.api_keys or SIGNAL_API_KEYS, or run serve --dev")
	case cfg.Database.URL == "":
		return errors.New("no database: set database.url or SIGNAL_DATABASE_URL")
	}
	return nil
}

// prepareDev fills what development needs: the embedded broker, secrets
// kept between runs, the database created and migrated.
func prepareDev(ctx context.Context, cfg *config.Config, info *Info, log *slog.Logger) error {
	if len(cfg.Kafka.Brokers) == 0 {
		cfg.Kafka.Brokers = []string{config.Embedded}
	}
	if cfg.Auth.JWTSecret == "" || len(cfg.Auth.APIKeys) == 0 {
		ds, err := devstate.LoadOrCreate()
		if err != nil {
			return err
		}
		if cfg.Auth.JWTSecret == "" {
			cfg.Auth.JWTSecret = ds.JWTSecret
		}
		if len(cfg.Auth.APIKeys) == 0 {
			cfg.Auth.APIKeys = []string{ds.APIKey}
		}
		log.Info("development secrets", "file", devstate.Path())
	}
	info.DevAPIKey = cfg.Auth.APIKeys[0]
	tok, err := auth.Sign(cfg.Auth.JWTSecret, "u1", nil, 30*24*time.Hour)
	if err != nil {
		return err
	}
	info.DevToken = tok
	created, err := store.EnsureDatabase(ctx, cfg.Database.URL)
	if err != nil {
		return fmt.Errorf("%w\nIs PostgreSQL running? `make run` starts a local one", err)
	}
	if created {
		log.Info("database created", "url", store.Redact(cfg.Database.URL))
	}
	mig, err := store.NewMigrator(cfg.Database.URL)
	if err != nil {
		return err
	}
	defer mig.Close()
	if err := mig.Up(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

func printBanner(w io.Writer, cfg *config.Config, info Info) {
	fmt.Fprintf(w, `
Signal is running in development mode.

  WebSocket  ws://%[1]s/socket/websocket?token=%[2]s
             (a token for recipient u1; mint others with: signalctl token --sub ID)
  REST API   http://%[1]s   Authorization: Bearer %[3]s
  Kafka      %[4]s, topic %[5]s
  Database   %[6]s

Try, in another shell:
  signalctl tail --room signal/notification/u1
  signalctl produce --scope users --recipients u1

`, info.HTTPAddr, info.DevToken, info.DevAPIKey, brokersText(cfg, info), cfg.Kafka.Topic, info.DatabaseURL)
}

func brokersText(cfg *config.Config, info Info) string {
	s := strings.Join(info.Brokers, ",")
	if cfg.UsesEmbeddedBroker() {
		s += " (embedded, in memory)"
	}
	return s
}

// kafkaHandler adapts franz-go records to ingest records.
type kafkaHandler struct {
	ing *ingest.Ingestor
}

func (k kafkaHandler) Prepare(recs []*kgo.Record) kafka.Batch {
	records := make([]ingest.Record, len(recs))
	for i, r := range recs {
		records[i] = ingest.Record{
			Source: event.Source{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp},
			Key:    r.Key, Value: r.Value,
		}
		for _, h := range r.Headers {
			records[i].Headers = append(records[i].Headers, event.Header{Key: h.Key, Value: h.Value})
		}
	}
	return kafkaBatch{k.ing, k.ing.Prepare(records)}
}

type kafkaBatch struct {
	ing *ingest.Ingestor
	p   *ingest.Prepared
}

func (b kafkaBatch) Persist(ctx context.Context) error {
	_, err := b.ing.Persist(ctx, b.p)
	return err
}

func (b kafkaBatch) Publish(ctx context.Context) { b.ing.Publish(ctx, b.p) }

// newInstanceID names this process among the instances: host and a random
// suffix, readable in `signalctl clients` and logs.
func newInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "signal"
	}
	return host + "-" + uuid.NewString()[:8]
}

// servePprof serves the runtime profiles on their own listener, apart from
// the public API.
func servePprof(addr string, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug.pprof_addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Warn("pprof listening: do not expose it", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
