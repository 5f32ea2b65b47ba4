package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/connlimit"
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
	"github.com/signal-notify/signal/internal/stream"
	"github.com/signal-notify/signal/internal/testhooks"
	"github.com/signal-notify/signal/internal/tracing"
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
	// OnShutdown, when set, is called after each step of the graceful
	// stop (Step* constants), on the goroutine running Run.
	OnShutdown func(step string)
}

// Info describes a running instance.
type Info struct {
	HTTPAddr    string   // bound address of the HTTP listener
	MetricsAddr string   // bound address of http.metrics_addr, if set
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
	// Lines logged with a traced context carry its trace_id and span_id.
	log = slog.New(tracing.LogHandler(log.Handler()))
	info := Info{DatabaseURL: store.Redact(cfg.Database.URL)}
	run := newRoutines(log)

	// pprof first, so that a start that fails or hangs can be profiled.
	stopPprof := func() {}
	if cfg.Debug.PprofAddr != "" {
		var err error
		if stopPprof, err = servePprof(cfg.Debug, run, log); err != nil {
			return err
		}
		defer stopPprof()
	}
	if o.Dev {
		if err := prepareDev(ctx, &cfg, &info, log); err != nil {
			return err
		}
	}
	if err := checkServeConfig(&cfg, o.Dev); err != nil {
		return err
	}
	apiKeys, err := auth.ParseAPIKeys(cfg.Auth.APIKeys)
	if err != nil {
		return err
	}
	verifier, err := auth.New(auth.Options{
		Secret: cfg.Auth.JWTSecret, PublicKeyFile: cfg.Auth.PublicKeyFile, JWKSURL: cfg.Auth.JWKSURL,
		Audience: cfg.Auth.Audience, Issuer: cfg.Auth.Issuer, MaxTTL: cfg.Auth.MaxTokenTTL,
		Logger: log.With("component", "auth"),
	})
	if err != nil {
		return err
	}

	// Kafka input.
	brokers := cfg.Kafka.Brokers
	if cfg.UsesEmbeddedBroker() {
		emb, err := kafka.StartEmbedded(cfg.Kafka.EmbeddedPort, embeddedTopics(&cfg)...)
		if err != nil {
			return err
		}
		defer emb.Close()
		brokers = []string{emb.Addr}
		log.Warn("embedded Kafka-protocol broker started: in memory, for development only", "addr", emb.Addr, "topic", cfg.Kafka.Topic)
	}
	info.Brokers = brokers

	// Database.
	st, err := store.OpenWithParams(ctx, cfg.Database.URL, cfg.Database.MaxConns, store.ServeParams)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return err
	}
	if !o.Dev {
		warnIfSuperuser(ctx, st, log)
		if cfg.HTTP.MetricsAddr == "" {
			log.Warn("GET /metrics is served without a credential on http.addr, the listener clients reach: set http.metrics_addr (e.g. 127.0.0.1:9090) to move it to a listener of its own (docs/security.md)", "addr", cfg.HTTP.Addr)
		}
	}

	renderer, err := event.NewRenderer(cfg.Templates)
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	m := metrics.New()
	ws := cfg.WebSocket
	heads := &stream.Heads{Read: st.Heads}
	defer heads.Wait()
	h := hub.New(hub.Options{
		MaxMessageBytes: ws.MaxMessageBytes, MaxRooms: ws.MaxRooms, QueueBytes: ws.QueueBytes,
		PingInterval:   ws.PingInterval,
		MaxConnections: ws.MaxConnections, MaxConnectionsPerSubject: ws.MaxConnectionsPerSubject,
		UpgradeRate: ws.UpgradeRate, UpgradeBurst: ws.UpgradeBurst, ActionRate: ws.ActionRate, ActionBurst: ws.ActionBurst,
		Verify: verifier.Verify,
		Streams: &hub.Streams{
			Heads: heads,
			Catchups: stream.NewCatchups(stream.Catchups{
				Source: streamSource{st}, Budget: stream.NewBudget(ws.ReplayRate, 2000), MaxBehind: int64(ws.ReplayLimit),
				Logger: log.With("component", "stream"),
				OnRead: func(_ int, took time.Duration) { m.StreamPageSeconds.Observe(took.Seconds()) },
			}, ws.ReplayReads),
			PositionOf: st.PositionOf, Peek: st.PeekHeads, CheckEvery: ws.SyncCheck,
		},
		Metrics: m,
		Logger:  log.With("component", "hub"),
	})
	defer h.Close()
	tcp, err := listenHTTP(cfg.HTTP, m, log)
	if err != nil {
		return err
	}
	defer tcp.Close()
	ln, err := listenTLS(tcp, cfg.HTTP, log)
	if err != nil {
		return err
	}
	var metricsLn net.Listener
	if cfg.HTTP.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.HTTP.MetricsAddr); err != nil {
			return fmt.Errorf("http.metrics_addr %s: %w", cfg.HTTP.MetricsAddr, err)
		}
		defer metricsLn.Close()
	}
	instanceID := newInstanceID()
	tr, err := tracing.Start(tracing.Options{Endpoint: cfg.OTel.Endpoint, Version: o.Version, Instance: instanceID, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := tr.Shutdown(2 * time.Second); err != nil {
			log.Warn("tracing", "err", err)
		}
	}()
	rel := relay.New(relay.Options{
		Store: st, Hub: h, InstanceID: instanceID, HTTPAddr: ln.Addr().String(), Heartbeat: cfg.Cluster.Heartbeat, DeadAfter: cfg.Cluster.DeadAfter,
		OnGap: func(ctx context.Context) {
			if err := h.Resync(ctx, true); err != nil && ctx.Err() == nil {
				log.Warn("streams could not be checked against the database after the relay came back; the periodic check will", "err", err)
			}
		},
		Metrics: m, Logger: log.With("component", "relay"),
	})
	h.SetPresence(rel)
	revokeOnRemove(cfg.Members, st, rel)
	var push ingest.Pusher = &pusher{relay: rel, hub: h, instance: instanceID}
	if tr.Enabled() {
		push = tracedPusher{push, tr.Tracer()}
	}
	ing := ingest.New(ingest.Options{
		Store: st, Renderer: renderer, Pusher: push, RepushWindow: cfg.Ingest.RepushWindow,
		Changes: stager(rel.Stage), GroupWindow: cfg.Notifications.GroupWindow,
		Retention: cfg.Notifications.Retention.Duration(), MaxRowsPerTx: cfg.Ingest.MaxRowsPerTx, Limits: ingest.LimitsOf(cfg.Ingest),
		Metrics: m, Logger: log.With("component", "ingest"),
	})

	clientOpts, err := kafka.ClientOpts(cfg.Kafka, brokers)
	if err != nil {
		return err
	}
	consumer, err := kafka.NewConsumer(kafka.ConsumerOptions{
		Client: clientOpts, Topic: cfg.Kafka.Topic, Group: cfg.Kafka.GroupID,
		ResetOffset: cfg.Kafka.ResetOffset, BatchSize: cfg.Kafka.BatchSize,
		SessionTimeout: cfg.Kafka.SessionTimeout, InstanceID: cfg.Kafka.InstanceID,
		RetryMin: cfg.Ingest.RetryMin, RetryMax: cfg.Ingest.RetryMax,
		Handler: kafkaHandler{ing, recordTracer(tr)}, Metrics: m, Logger: log.With("component", "consumer"),
	})
	if err != nil {
		return err
	}
	defer consumer.Close() // leaves the group on every way out, Run or not
	members, membersChecks, err := newMemberFeed(&cfg, clientOpts, st, m, log)
	if err != nil {
		return err
	}
	if members != nil {
		defer members.Close()
	}

	var draining atomic.Bool
	checks := []httpapi.Check{
		{Name: "database", Check: st.Ping},
		{Name: "kafka", Check: consumer.Ready},
		{Name: "relay", Check: func(context.Context) error { return rel.Err() }},
	}
	if cfg.Auth.JWKSURL != "" {
		if err := verifier.Ready(); err != nil {
			log.Warn("no token keys yet: tokens are refused until auth.jwks_url answers", "err", err)
		}
		checks = append(checks, httpapi.Check{Name: "auth", Check: func(context.Context) error { return verifier.Ready() }})
	}
	trusted, err := config.ParsePrefixes(cfg.HTTP.TrustedProxies)
	if err != nil {
		return fmt.Errorf("http.trusted_proxies: %w", err)
	}
	api := httpapi.New(httpapi.Options{
		Hub: h, Relay: rel, Inbox: inbox{st, stager(rel.Stage)}, Memberships: st, Preferences: st,
		Notifier: notifier{store: st, ingest: ing, stage: stager(rel.Stage)},
		Verifier: verifier, APIKeys: apiKeys, MetricsElsewhere: metricsLn != nil,
		Metrics: m, Logger: log.With("component", "http"), Draining: draining.Load,
		Console:        console.Handler(),
		StatusSource:   statusSource(instanceID, o.Version, &cfg, time.Now(), consumer, st, rel),
		Checks:         append(checks, membersChecks...),
		TrustedProxies: trusted, Tracer: tr.Tracer(),
	})
	srv := newHTTPServer(cfg.HTTP, connlimit.Guard(api, "/healthz", "/readyz"), log)
	srv.ConnContext = connlimit.ConnContext
	var metricsSrv *http.Server
	if metricsLn != nil {
		metricsSrv = newHTTPServer(cfg.HTTP, httpapi.MetricsHandler(m), log)
	}
	info.HTTPAddr = ln.Addr().String()
	info.InstanceID = instanceID

	// consumeCtx ends the consumer; the HTTP side outlives it so in-flight
	// pushes still reach clients.
	consumeCtx, stopConsuming := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsuming()
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelay()
	consumerDone := make(chan struct{})
	run.Go("consumer", func() error {
		defer close(consumerDone)
		return consumer.Run(consumeCtx)
	})
	if members != nil {
		run.Go("members consumer", func() error { return members.Run(consumeCtx) })
	}
	relayDone := make(chan struct{})
	run.Go("relay", func() error {
		defer close(relayDone)
		return rel.Run(relayCtx)
	})
	run.Go("expiry", func() error {
		sweepExpired(relayCtx, st, stager(rel.Stage), log.With("component", "expiry"))
		return nil
	})
	run.Go("partition maintenance", func() error {
		maintain(relayCtx, st, cfg.Notifications.Retention.Duration(), log.With("component", "partitions"))
		return nil
	})
	run.Go("rebalance", func() error {
		return rebalance(consumeCtx, st, h, instanceID, cfg.Cluster.RebalanceInterval, log.With("component", "balance"))
	})
	run.Go("consumer member", func() error {
		// Which group member is this instance (status shows instances).
		trackMember(relayCtx, consumer.Client(), st, instanceID, log)
		return nil
	})
	run.Go("http", func() error { return serveHTTP(srv, ln) })
	if d := testhooks.ShutdownStall(); d > 0 { // tests only: an overrun to notice
		run.Go("test shutdown stall", func() error {
			<-ctx.Done()
			time.Sleep(d)
			return nil
		})
	}
	if metricsSrv != nil {
		run.Go("metrics http", func() error { return serveHTTP(metricsSrv, metricsLn) })
		info.MetricsAddr = metricsLn.Addr().String()
	}

	log.Info("signal serving", "instance", instanceID, "http", info.HTTPAddr, "brokers", brokers, "topic", cfg.Kafka.Topic, "group", cfg.Kafka.GroupID, "database", info.DatabaseURL)
	if o.Dev {
		// The CLI of this clone finds this instance (and its broker, when it
		// runs one) and sends the development key to it alone.
		if err := devstate.SaveServer("http://"+info.HTTPAddr, strings.Join(brokers, ","), cfg.UsesEmbeddedBroker()); err != nil {
			log.Warn("could not record this instance for the other commands", "err", err)
		}
		printBanner(o.Out, &cfg, info)
	}
	if o.OnReady != nil {
		o.OnReady(info)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing the batch in hand, then closing clients", "deadline", cfg.Shutdown.Timeout)
	case <-run.Failed():
		log.Error("a component failed; shutting down")
	}
	return shutdown{
		cfg: &cfg, log: log, run: run, step: o.OnShutdown,
		draining: &draining, stopConsuming: stopConsuming, consumerDone: consumerDone,
		servers: []*http.Server{srv, metricsSrv}, hub: h, stopRelay: stopRelay, relayDone: relayDone, store: st,
		stopPprof: stopPprof,
	}.do()
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
	info.DevAPIKey = auth.KeyOf(cfg.Auth.APIKeys[0])
	ttl := 30 * 24 * time.Hour
	if m := cfg.Auth.MaxTokenTTL; m > 0 && m < ttl {
		ttl = m
	}
	tok, err := auth.SignToken(cfg.Auth.JWTSecret, auth.SignOptions{Sub: "u1", TTL: ttl, Audience: cfg.Auth.Audience, Issuer: cfg.Auth.Issuer})
	if err != nil {
		return err
	}
	info.DevToken = tok
	// database.url left at its default: the database of this clone's
	// serve --dev (make run's cluster, password included), as the other
	// commands find it: a second instance shares it.
	cfg.Database.URL = devstate.DatabaseURL(cfg.Database.URL, config.DefaultDatabaseURL)
	info.DatabaseURL = store.Redact(cfg.Database.URL)
	created, err := store.EnsureDatabase(ctx, cfg.Database.URL)
	if err != nil {
		return explainDatabase(err, cfg.Database.URL)
	}
	if created {
		log.Info("database created", "url", store.Redact(cfg.Database.URL))
	}
	// The other commands on this machine (notifications, dedupe, …) find
	// this database, password included, without SIGNAL_DATABASE_URL.
	if err := devstate.SaveDatabaseURL(cfg.Database.URL); err != nil {
		log.Warn("could not record the development database for the other commands", "err", err)
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

  WebSocket  ws%[9]s://%[1]s/socket/websocket?token=%[2]s
             (a token for recipient u1; mint others with: signalctl token --sub ID)
  REST API   http%[9]s://%[1]s   Authorization: Bearer %[3]s
  Kafka      %[4]s, topic %[5]s
  Database   %[6]s

Try, in another shell:
  signalctl tail --room signal/notification/u1%[7]s
  signalctl produce --scope users --recipients u1%[8]s

`, info.HTTPAddr, info.DevToken, info.DevAPIKey, brokersText(cfg, info), cfg.Kafka.Topic, info.DatabaseURL,
		serverFlag(cfg, info), brokersFlag(cfg, info), tlsSuffix(cfg))
}

// serverFlag is the --server the CLI needs to reach this instance: none
// when it listens where the CLI looks by default (client.server, or the
// instance of this clone that runs the embedded broker).
func serverFlag(cfg *config.Config, info Info) string {
	url := "http" + tlsSuffix(cfg) + "://" + info.HTTPAddr
	if url == strings.TrimRight(cfg.Client.Server, "/") || cfg.UsesEmbeddedBroker() {
		return ""
	}
	return " --server " + url
}

// tlsSuffix makes ws and http wss and https when http.addr serves TLS.
func tlsSuffix(cfg *config.Config) string {
	if cfg.HTTP.TLSCertFile != "" {
		return "s"
	}
	return ""
}

// brokersFlag is the --brokers produce needs to reach this instance's
// broker: none when it is where produce looks without one, the development
// broker's address (127.0.0.1 and kafka.embedded_port, or the embedded
// broker of this clone's serve --dev, which this one may be).
func brokersFlag(cfg *config.Config, info Info) string {
	b := strings.Join(info.Brokers, ",")
	if b == "127.0.0.1:"+strconv.Itoa(cfg.Kafka.EmbeddedPort) || cfg.UsesEmbeddedBroker() {
		return ""
	}
	if ds, _ := devstate.Load(); ds != nil && ds.Brokers == b {
		return ""
	}
	return " --brokers " + b
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
	ing    *ingest.Ingestor
	tracer trace.Tracer // nil: tracing off
}

func (k kafkaHandler) Prepare(recs []*kgo.Record) kafka.Batch {
	b := kafkaBatch{ing: k.ing, p: k.ing.Prepare(ingestRecords(recs)), tracer: k.tracer}
	if k.tracer != nil {
		b.traced = startConsume(k.tracer, recs)
	}
	return b
}

type kafkaBatch struct {
	ing    *ingest.Ingestor
	p      *ingest.Prepared
	tracer trace.Tracer
	traced []tracedRecord // records with a sampled traceparent (tracing.go)
}

func (b kafkaBatch) Persist(ctx context.Context) error {
	ctx, end := startPersist(ctx, b.tracer, b.traced)
	_, err := b.ing.Persist(ctx, b.p)
	end(err)
	return err
}

// Publish has nothing left to do: the rows were handed to the relay when
// their transaction committed, and it pushes them in seq order. It ends
// the consume spans: the offsets are committed next.
func (b kafkaBatch) Publish(context.Context) {
	for _, r := range b.traced {
		r.consume.End()
	}
}

// newInstanceID names this process among the instances: host and a random
// suffix, readable in `signalctl clients` and logs.
func newInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "signal"
	}
	return host + "-" + uuid.NewString()[:8]
}
