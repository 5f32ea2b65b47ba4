package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/devstate"
	"github.com/signal-notify/signal/internal/ingest"
	"github.com/signal-notify/signal/internal/kafka"
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
