package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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

// Run serves until ctx ends, then shuts down in order.
func Run(ctx context.Context, o Options) error {
	s := newServer(o)
	// Whatever build acquired is released on every way out, last acquired
	// first, after the graceful stop when there was one.
	defer s.release()
	if err := s.build(ctx); err != nil {
		return err
	}
	s.start(ctx)
	s.announce()
	select {
	case <-ctx.Done():
		s.log.Info("shutting down: finishing the batch in hand, then closing clients", "deadline", s.cfg.Shutdown.Timeout)
	case <-s.run.Failed():
		s.log.Error("a component failed; shutting down")
	}
	return s.shutdown()
}

// server is one serve run, in three phases: build makes every component
// (nothing runs yet but pprof), start launches the routines, shutdown stops
// them in order (lifecycle.go). What build acquires it pushes on releases,
// which release undoes in reverse.
type server struct {
	o        Options
	cfg      config.Config // o.Config's copy, completed by --dev
	log      *slog.Logger
	run      *routines
	info     Info
	releases []func()

	stopPprof  func() // last of the graceful stop: a stuck stop can still be profiled
	brokers    []string
	apiKeys    *auth.APIKeys
	verifier   *auth.Verifier
	st         *store.Store
	renderer   *event.Renderer
	m          *metrics.Metrics
	h          *hub.Hub
	ln         net.Listener // http.addr, capped, TLS when configured
	metricsLn  net.Listener // http.metrics_addr; nil when unset
	instanceID string
	tr         *tracing.Tracing
	rel        *relay.Relay
	ing        *ingest.Ingestor
	clientOpts []kgo.Opt
	consumer   *kafka.Consumer
	members    *kafka.Consumer // nil without members.topic
	memberChks []httpapi.Check
	srv        *http.Server
	metricsSrv *http.Server // nil without http.metrics_addr
	draining   atomic.Bool

	// The consumers' context ends first; the HTTP side outlives it so
	// in-flight pushes still reach clients, and the relay's ends last.
	consumeCtx    context.Context
	stopConsuming context.CancelFunc
	consumerDone  chan struct{}
	relayCtx      context.Context
	stopRelay     context.CancelFunc
	relayDone     chan struct{}
}

func newServer(o Options) *server {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	// Lines logged with a traced context carry its trace_id and span_id.
	log = slog.New(tracing.LogHandler(log.Handler()))
	s := &server{o: o, cfg: *o.Config, log: log, run: newRoutines(log), stopPprof: func() {}}
	s.info = Info{DatabaseURL: store.Redact(s.cfg.Database.URL)}
	return s
}

// onRelease pushes f, to be called by release.
func (s *server) onRelease(f func()) { s.releases = append(s.releases, f) }

// release undoes what build acquired, last first.
func (s *server) release() {
	for i := len(s.releases) - 1; i >= 0; i-- {
		s.releases[i]()
	}
	s.releases = nil
}

// build makes every component, in dependency order, and stops at the first
// that fails; what was made is left for release.
func (s *server) build(ctx context.Context) error {
	for _, step := range []func(context.Context) error{
		s.buildSettings, s.buildBroker, s.buildStore, s.buildHub, s.buildListeners,
		s.buildRelay, s.buildConsumers, s.buildHTTP,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// buildSettings starts pprof first, so that a start that fails or hangs
// can be profiled, then completes and checks the configuration and reads
// the credentials.
func (s *server) buildSettings(ctx context.Context) error {
	cfg := &s.cfg
	if cfg.Debug.PprofAddr != "" {
		stop, err := servePprof(cfg.Debug, s.run, s.log)
		if err != nil {
			return err
		}
		s.stopPprof = stop
		s.onRelease(stop)
	}
	if s.o.Dev {
		if err := prepareDev(ctx, cfg, &s.info, s.log); err != nil {
			return err
		}
	}
	if err := checkServeConfig(cfg, s.o.Dev); err != nil {
		return err
	}
	var err error
	if s.apiKeys, err = auth.ParseAPIKeys(cfg.Auth.APIKeys); err != nil {
		return err
	}
	s.verifier, err = auth.New(auth.Options{
		Secret: cfg.Auth.JWTSecret, PublicKeyFile: cfg.Auth.PublicKeyFile, JWKSURL: cfg.Auth.JWKSURL,
		Audience: cfg.Auth.Audience, Issuer: cfg.Auth.Issuer, MaxTTL: cfg.Auth.MaxTokenTTL,
		Logger: s.log.With("component", "auth"),
	})
	return err
}

// buildBroker starts the embedded broker when kafka.brokers asks for it.
func (s *server) buildBroker(context.Context) error {
	s.brokers = s.cfg.Kafka.Brokers
	if s.cfg.UsesEmbeddedBroker() {
		emb, err := kafka.StartEmbedded(s.cfg.Kafka.EmbeddedPort, embeddedTopics(&s.cfg)...)
		if err != nil {
			return err
		}
		s.onRelease(emb.Close)
		s.brokers = []string{emb.Addr}
		s.log.Warn("embedded Kafka-protocol broker started: in memory, for development only", "addr", emb.Addr, "topic", s.cfg.Kafka.Topic)
	}
	s.info.Brokers = s.brokers
	return nil
}

// buildStore opens the database and checks its schema.
func (s *server) buildStore(ctx context.Context) error {
	cfg := &s.cfg
	st, err := store.OpenWithParams(ctx, cfg.Database.URL, cfg.Database.MaxConns, store.ServeParams)
	if err != nil {
		return err
	}
	s.st = st
	s.onRelease(st.Close)
	if err := st.CheckSchema(ctx); err != nil {
		return err
	}
	if !s.o.Dev {
		warnIfSuperuser(ctx, st, s.log)
		if cfg.HTTP.MetricsAddr == "" {
			s.log.Warn("GET /metrics is served without a credential on http.addr, the listener clients reach: set http.metrics_addr (e.g. 127.0.0.1:9090) to move it to a listener of its own (docs/security.md)", "addr", cfg.HTTP.Addr)
		}
	}
	return nil
}

// buildHub makes the templates' renderer, the metrics and the hub with
// its streams.
func (s *server) buildHub(context.Context) error {
	var err error
	if s.renderer, err = event.NewRenderer(s.cfg.Templates); err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	ws, st, m := s.cfg.WebSocket, s.st, metrics.New()
	s.m = m
	heads := &stream.Heads{Read: st.Heads}
	s.onRelease(heads.Wait)
	s.h = hub.New(hub.Options{
		MaxMessageBytes: ws.MaxMessageBytes, MaxRooms: ws.MaxRooms, QueueBytes: ws.QueueBytes,
		PingInterval:   ws.PingInterval,
		MaxConnections: ws.MaxConnections, MaxConnectionsPerSubject: ws.MaxConnectionsPerSubject,
		UpgradeRate: ws.UpgradeRate, UpgradeBurst: ws.UpgradeBurst, ActionRate: ws.ActionRate, ActionBurst: ws.ActionBurst,
		Verify: s.verifier.Verify,
		Streams: &hub.Streams{
			Heads: heads,
			Catchups: stream.NewCatchups(stream.Catchups{
				Source: streamSource{st}, Budget: stream.NewBudget(ws.ReplayRate, 2000), MaxBehind: int64(ws.ReplayLimit),
				Logger: s.log.With("component", "stream"),
				OnRead: func(_ int, took time.Duration) { m.StreamPageSeconds.Observe(took.Seconds()) },
			}, ws.ReplayReads),
			PositionOf: st.PositionOf, Peek: st.PeekHeads, CheckEvery: ws.SyncCheck,
		},
		Metrics: m,
		Logger:  s.log.With("component", "hub"),
	})
	s.onRelease(s.h.Close)
	return nil
}

// buildListeners listens on http.addr (capped, TLS when configured) and
// on http.metrics_addr when set.
func (s *server) buildListeners(context.Context) error {
	c := s.cfg.HTTP
	tcp, err := listenHTTP(c, s.m, s.log)
	if err != nil {
		return err
	}
	s.onRelease(func() { _ = tcp.Close() })
	if s.ln, err = listenTLS(tcp, c, s.log); err != nil {
		return err
	}
	if c.MetricsAddr != "" {
		ln, err := net.Listen("tcp", c.MetricsAddr)
		if err != nil {
			return fmt.Errorf("http.metrics_addr %s: %w", c.MetricsAddr, err)
		}
		s.metricsLn = ln
		s.onRelease(func() { _ = ln.Close() })
	}
	return nil
}

// buildRelay makes the tracing, the relay (the hub's presence among the
// instances) and the ingestor that pushes through both.
func (s *server) buildRelay(context.Context) error {
	cfg, h, log := &s.cfg, s.h, s.log
	s.instanceID = newInstanceID()
	tr, err := tracing.Start(tracing.Options{Endpoint: cfg.OTel.Endpoint, Version: s.o.Version, Instance: s.instanceID, Logger: log})
	if err != nil {
		return err
	}
	s.tr = tr
	s.onRelease(func() {
		if err := tr.Shutdown(2 * time.Second); err != nil {
			log.Warn("tracing", "err", err)
		}
	})
	s.rel = relay.New(relay.Options{
		Store: s.st, Hub: h, InstanceID: s.instanceID, HTTPAddr: s.ln.Addr().String(), Heartbeat: cfg.Cluster.Heartbeat, DeadAfter: cfg.Cluster.DeadAfter,
		OnGap: func(ctx context.Context) {
			if err := h.Resync(ctx, true); err != nil && ctx.Err() == nil {
				log.Warn("streams could not be checked against the database after the relay came back; the periodic check will", "err", err)
			}
		},
		Metrics: s.m, Logger: log.With("component", "relay"),
	})
	h.SetPresence(s.rel)
	revokeOnRemove(cfg.Members, s.st, s.rel)
	var push ingest.Pusher = &pusher{relay: s.rel, hub: h, instance: s.instanceID}
	if tr.Enabled() {
		push = tracedPusher{push, tr.Tracer()}
	}
	s.ing = ingest.New(ingest.Options{
		Store: s.st, Renderer: s.renderer, Pusher: push, RepushWindow: cfg.Ingest.RepushWindow,
		Changes: stager(s.rel.Stage), GroupWindow: cfg.Notifications.GroupWindow,
		Retention: cfg.Notifications.Retention.Duration(), MaxRowsPerTx: cfg.Ingest.MaxRowsPerTx, Limits: ingest.LimitsOf(cfg.Ingest),
		Metrics: s.m, Logger: log.With("component", "ingest"),
	})
	return nil
}

// buildConsumers makes the consumer of kafka.topic and, when set, of
// members.topic. Both leave their group on every way out, run or not.
func (s *server) buildConsumers(context.Context) error {
	cfg := &s.cfg
	var err error
	if s.clientOpts, err = kafka.ClientOpts(cfg.Kafka, s.brokers); err != nil {
		return err
	}
	s.consumer, err = kafka.NewConsumer(kafka.ConsumerOptions{
		Client: s.clientOpts, Topic: cfg.Kafka.Topic, Group: cfg.Kafka.GroupID,
		ResetOffset: cfg.Kafka.ResetOffset, BatchSize: cfg.Kafka.BatchSize,
		SessionTimeout: cfg.Kafka.SessionTimeout, InstanceID: cfg.Kafka.InstanceID,
		RetryMin: cfg.Ingest.RetryMin, RetryMax: cfg.Ingest.RetryMax,
		Handler: kafkaHandler{s.ing, recordTracer(s.tr)}, Metrics: s.m, Logger: s.log.With("component", "consumer"),
	})
	if err != nil {
		return err
	}
	s.onRelease(s.consumer.Close)
	if s.members, s.memberChks, err = newMemberFeed(cfg, s.clientOpts, s.st, s.m, s.log); err != nil {
		return err
	}
	if s.members != nil {
		s.onRelease(s.members.Close)
	}
	return nil
}

// buildHTTP makes the API, its readiness checks and its servers.
func (s *server) buildHTTP(context.Context) error {
	cfg, st, rel, verifier := &s.cfg, s.st, s.rel, s.verifier
	checks := []httpapi.Check{
		{Name: "database", Check: st.Ping},
		{Name: "kafka", Check: s.consumer.Ready},
		{Name: "relay", Check: func(context.Context) error { return rel.Err() }},
	}
	if cfg.Auth.JWKSURL != "" {
		if err := verifier.Ready(); err != nil {
			s.log.Warn("no token keys yet: tokens are refused until auth.jwks_url answers", "err", err)
		}
		checks = append(checks, httpapi.Check{Name: "auth", Check: func(context.Context) error { return verifier.Ready() }})
	}
	trusted, err := config.ParsePrefixes(cfg.HTTP.TrustedProxies)
	if err != nil {
		return fmt.Errorf("http.trusted_proxies: %w", err)
	}
	api := httpapi.New(httpapi.Options{
		Hub: s.h, Relay: rel, Inbox: inbox{st, stager(rel.Stage)}, Memberships: st, Preferences: st,
		Notifier: notifier{store: st, ingest: s.ing, stage: stager(rel.Stage)},
		Verifier: verifier, APIKeys: s.apiKeys, MetricsElsewhere: s.metricsLn != nil,
		Metrics: s.m, Logger: s.log.With("component", "http"), Draining: s.draining.Load,
		Console:        console.Handler(),
		StatusSource:   statusSource(s.instanceID, s.o.Version, cfg, time.Now(), s.consumer, st, rel),
		Checks:         append(checks, s.memberChks...),
		TrustedProxies: trusted, Tracer: s.tr.Tracer(),
	})
	s.srv = newHTTPServer(cfg.HTTP, connlimit.Guard(api, "/healthz", "/readyz"), s.log)
	s.srv.ConnContext = connlimit.ConnContext
	if s.metricsLn != nil {
		s.metricsSrv = newHTTPServer(cfg.HTTP, httpapi.MetricsHandler(s.m), s.log)
	}
	s.info.HTTPAddr = s.ln.Addr().String()
	s.info.InstanceID = s.instanceID
	return nil
}

// start launches every routine. Their contexts outlive ctx: shutdown ends
// them one after the other.
func (s *server) start(ctx context.Context) {
	cfg, st, log := &s.cfg, s.st, s.log
	s.consumeCtx, s.stopConsuming = context.WithCancel(context.WithoutCancel(ctx))
	s.onRelease(s.stopConsuming)
	s.relayCtx, s.stopRelay = context.WithCancel(context.WithoutCancel(ctx))
	s.onRelease(s.stopRelay)
	s.consumerDone, s.relayDone = make(chan struct{}), make(chan struct{})
	s.run.Go("consumer", func() error {
		defer close(s.consumerDone)
		return s.consumer.Run(s.consumeCtx)
	})
	if s.members != nil {
		s.run.Go("members consumer", func() error { return s.members.Run(s.consumeCtx) })
	}
	s.run.Go("relay", func() error {
		defer close(s.relayDone)
		return s.rel.Run(s.relayCtx)
	})
	s.run.Go("expiry", func() error {
		sweepExpired(s.relayCtx, st, stager(s.rel.Stage), log.With("component", "expiry"))
		return nil
	})
	s.run.Go("partition maintenance", func() error {
		maintain(s.relayCtx, st, cfg.Notifications.Retention.Duration(), log.With("component", "partitions"))
		return nil
	})
	s.run.Go("rebalance", func() error {
		return rebalance(s.consumeCtx, st, s.h, s.instanceID, cfg.Cluster.RebalanceInterval, log.With("component", "balance"))
	})
	s.run.Go("consumer member", func() error {
		// Which group member is this instance (status shows instances).
		trackMember(s.relayCtx, s.consumer.Client(), st, s.instanceID, log)
		return nil
	})
	s.run.Go("http", func() error { return serveHTTP(s.srv, s.ln) })
	if d := testhooks.ShutdownStall(); d > 0 { // tests only: an overrun to notice
		s.run.Go("test shutdown stall", func() error {
			<-ctx.Done()
			time.Sleep(d)
			return nil
		})
	}
	if s.metricsSrv != nil {
		s.run.Go("metrics http", func() error { return serveHTTP(s.metricsSrv, s.metricsLn) })
		s.info.MetricsAddr = s.metricsLn.Addr().String()
	}
}

// announce says the instance serves: the log, --dev's banner and the
// address book of the other commands, Options.OnReady.
func (s *server) announce() {
	cfg, info := &s.cfg, s.info
	s.log.Info("signal serving", "instance", s.instanceID, "http", info.HTTPAddr, "brokers", s.brokers, "topic", cfg.Kafka.Topic, "group", cfg.Kafka.GroupID, "database", info.DatabaseURL)
	if s.o.Dev {
		// The CLI of this clone finds this instance (and its broker, when it
		// runs one) and sends the development key to it alone.
		if err := devstate.SaveServer("http://"+info.HTTPAddr, strings.Join(s.brokers, ","), cfg.UsesEmbeddedBroker()); err != nil {
			s.log.Warn("could not record this instance for the other commands", "err", err)
		}
		printBanner(s.o.Out, cfg, info)
	}
	if s.o.OnReady != nil {
		s.o.OnReady(info)
	}
}
