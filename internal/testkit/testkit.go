package testkit

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/daemon"
	"github.com/signal-notify/signal/internal/kafka"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// Secrets used by every test instance.
const (
	JWTSecret = "test-secret-0123456789abcdef-0123456789" // serve wants 32 bytes or more
	APIKey    = "test-api-key-0123456789abcdef"           // and 24 characters or more
	Topic     = "signal.activity-notification"
)

// Broker starts an in-process Kafka-protocol broker with the topic created.
func Broker(t testing.TB) string {
	t.Helper()
	emb, err := kafka.StartEmbedded(0, Topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	return emb.Addr
}

// Config is a serve configuration for tests: the given broker and database,
// any free port, test secrets, fast retries.
func Config(t testing.TB, broker, dbURL string) *config.Config {
	t.Helper()
	// An empty file of its own, not $SIGNAL_CONFIG (a developer's), and no
	// Setenv: parallel tests may call it.
	empty := filepath.Join(t.TempDir(), "signal.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(empty, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database.URL = dbURL
	cfg.Kafka.Brokers = []string{broker}
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Auth.JWTSecret = JWTSecret
	cfg.Auth.APIKeys = []string{APIKey}
	cfg.Ingest.RetryMin = 20 * time.Millisecond
	cfg.Ingest.RetryMax = 300 * time.Millisecond
	cfg.WebSocket.CloseWindow = 50 * time.Millisecond
	return cfg
}

// Instance is a running serve.
type Instance struct {
	t      testing.TB
	Info   daemon.Info
	Config *config.Config
	Store  *store.Store
	cancel context.CancelFunc
	done   chan error
	// stopLimit bounds Stop: the instance's shutdown.timeout and a margin.
	stopLimit time.Duration
}

// URL is the instance's base HTTP URL (https:// with http.tls_cert_file).
func (in *Instance) URL() string { return in.scheme("http") + "://" + in.Info.HTTPAddr }

// WSURL is the instance's WebSocket endpoint (wss:// with http.tls_cert_file).
func (in *Instance) WSURL() string {
	return in.scheme("ws") + "://" + in.Info.HTTPAddr + "/socket/websocket"
}

func (in *Instance) scheme(plain string) string {
	if in.Config.HTTP.TLSCertFile != "" {
		return plain + "s"
	}
	return plain
}

// Env is a broker, a database and the config to serve them.
type Env struct {
	Broker string
	DBURL  string
	Store  *store.Store
}

// NewEnv starts a broker and makes a migrated database.
func NewEnv(t testing.TB) *Env {
	t.Helper()
	st, url := pgtest.Open(t)
	return &Env{Broker: Broker(t), DBURL: url, Store: st}
}

// Serve starts an instance on env; edit may change the config first. It
// returns once the instance has joined the consumer group.
func (e *Env) Serve(t testing.TB, edit func(*config.Config)) *Instance {
	t.Helper()
	cfg := Config(t, e.Broker, e.DBURL)
	if edit != nil {
		edit(cfg)
	}
	return Start(t, cfg)
}

// Start runs daemon.Run with cfg until the test ends (or Stop). At the
// end of the test it stops the instance, and the test fails when the run
// ended with an error (a component that failed, a shutdown past its
// shutdown.timeout) or did not end in time; a test that expects an error
// calls Stop itself.
func Start(t testing.TB, cfg *config.Config) *Instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan daemon.Info, 1)
	in := &Instance{t: t, Config: cfg, cancel: cancel, done: make(chan error, 1),
		stopLimit: cfg.Shutdown.Timeout + 30*time.Second}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: logLevel()}))
	go func() {
		in.done <- daemon.Run(ctx, daemon.Options{Config: cfg, Logger: logger, OnReady: func(i daemon.Info) { ready <- i }})
	}()
	select {
	case in.Info = <-ready:
	case err := <-in.done:
		cancel()
		t.Fatalf("serve did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start within 30s")
	}
	t.Cleanup(func() {
		if err := in.Stop(); err != nil {
			t.Errorf("serve, stopped at the end of the test: %v", err)
		}
	})
	in.WaitReady()
	return in
}

// WaitReady waits until /readyz answers 200 (the consumer joined its group).
func (in *Instance) WaitReady() {
	in.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	// Readiness only: a TLS test checks the certificate with its own client.
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer cl.CloseIdleConnections()
	for time.Now().Before(deadline) {
		resp, err := cl.Get(in.URL() + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			last = string(b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.t.Fatalf("instance not ready after 30s: %s", last)
}

// ErrStopOverrun is Stop's error when the run has not ended within the
// instance's shutdown.timeout and a margin of 30 s.
var ErrStopOverrun = errors.New("serve's run did not end within shutdown.timeout + 30s")

// Stop shuts the instance down gracefully and returns Run's error, or
// ErrStopOverrun. Later calls return nil.
func (in *Instance) Stop() error {
	if in.cancel == nil {
		return nil
	}
	in.cancel()
	in.cancel = nil
	t := time.NewTimer(in.stopLimit)
	defer t.Stop()
	select {
	case err := <-in.done:
		return err
	case <-t.C:
		return fmt.Errorf("%w (%s)", ErrStopOverrun, in.stopLimit)
	}
}

// Token mints a token for sub.
func Token(t testing.TB, sub string, rooms ...string) string {
	t.Helper()
	tok, err := auth.Sign(JWTSecret, sub, rooms, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Producer returns a Kafka client producing to the test topic.
func Producer(t testing.TB, broker string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(Topic), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Produce sends values synchronously and fails the test on error.
func Produce(t testing.TB, cl *kgo.Client, values ...[]byte) []*kgo.Record {
	t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Key: []byte("org-1"), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// Message builds a valid message value; edit may change it before encoding.
func Message(scope string, recipients []string, edit func(m map[string]any)) []byte {
	m := map[string]any{
		"eventType": "PAYMENT_SUCCESS", "recipientScope": scope, "actorId": "a1",
		"actor":       map[string]any{"id": "a1", "name": "Alice", "type": "user"},
		"organizerId": "org-1",
		"data":        map[string]any{"payment": map[string]any{"subject": "Ticket", "id": "p-1"}},
		"occurredAt":  time.Now().UTC().Format(time.RFC3339Nano),
	}
	if recipients != nil {
		m["recipientIds"] = recipients
	}
	if edit != nil {
		edit(m)
	}
	b, _ := json.Marshal(m)
	return b
}

// Eventually retries cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Count runs a count query.
func Count(t testing.TB, st *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := st.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func logLevel() slog.Level {
	if os.Getenv("SIGNAL_TEST_LOG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// testWriter sends logs to t.Log so they show only for failing tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
