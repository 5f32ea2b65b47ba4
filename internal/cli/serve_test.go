package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/cli"
	"github.com/signal-notify/signal/internal/devstate"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

// Secrets long enough for serve without --dev.
const (
	longSecret = "0123456789abcdef0123456789abcdef"
	longKey    = "key-0123456789abcdef-0123"
)

func TestServeWithoutDevNamesTheMissingSetting(t *testing.T) {
	cases := []struct {
		name   string
		env    map[string]string
		args   []string
		config string
		want   string
	}{
		{
			name: "no brokers",
			env:  map[string]string{"SIGNAL_AUTH_JWT_SECRET": "s", "SIGNAL_API_KEYS": "k"},
			want: "no Kafka brokers: set kafka.brokers or SIGNAL_KAFKA_BROKERS",
		},
		{
			name: "nothing at all",
			want: "kafka.brokers",
		},
		{
			name: "no JWT secret",
			env:  map[string]string{"SIGNAL_KAFKA_BROKERS": "127.0.0.1:1", "SIGNAL_API_KEYS": "k"},
			want: "no JWT secret: set auth.jwt_secret or SIGNAL_AUTH_JWT_SECRET",
		},
		{
			name: "no API key",
			env:  map[string]string{"SIGNAL_KAFKA_BROKERS": "127.0.0.1:1", "SIGNAL_AUTH_JWT_SECRET": "s"},
			want: "no API key: set auth.api_keys or SIGNAL_API_KEYS",
		},
		{
			name: "no API key, the rest from flag and file",
			args: []string{"--brokers", "127.0.0.1:1"}, config: "auth:\n  jwt_secret: s\n",
			want: "auth.api_keys",
		},
		{
			name: "blank list values do not count",
			env:  map[string]string{"SIGNAL_KAFKA_BROKERS": " , ", "SIGNAL_AUTH_JWT_SECRET": "s", "SIGNAL_API_KEYS": "k"},
			want: "kafka.brokers",
		},
		{
			name: "a JWT secret under 32 bytes",
			env:  map[string]string{"SIGNAL_KAFKA_BROKERS": "127.0.0.1:1", "SIGNAL_AUTH_JWT_SECRET": "a", "SIGNAL_API_KEYS": longKey},
			want: "auth.jwt_secret is 1 bytes long: outside --dev it must be at least 32",
		},
		{
			name: "a JWT secret of 31 bytes",
			env:  map[string]string{"SIGNAL_KAFKA_BROKERS": "127.0.0.1:1", "SIGNAL_AUTH_JWT_SECRET": longSecret[:31], "SIGNAL_API_KEYS": longKey},
			want: "auth.jwt_secret is 31 bytes long",
		},
		{
			name: "an API key under 24 characters",
			env:  map[string]string{"SIGNAL_KAFKA_BROKERS": "127.0.0.1:1", "SIGNAL_AUTH_JWT_SECRET": longSecret, "SIGNAL_API_KEYS": longKey + ",k"},
			want: "auth.api_keys: key 2 of 2 is 1 characters long: outside --dev each must be at least 24",
		},
		{
			name: "the dev state is for --dev only",
			env:  map[string]string{"SIGNAL_KAFKA_BROKERS": "127.0.0.1:1"},
			want: "auth.jwt_secret",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			if _, err := devstate.LoadOrCreate(); err != nil { // must not be used
				t.Fatal(err)
			}
			t.Setenv("SIGNAL_DATABASE_URL", pgtest.NewDatabase(t))
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := append([]string{"serve"}, tc.args...)
			if tc.config != "" {
				args = append(args, "--config", writeFile(t, "signal.yaml", tc.config))
			}
			start := time.Now()
			r := run(t, args...)
			r.wantCode(t, 1)
			if !strings.HasPrefix(r.Stderr, "Error: ") || strings.Count(r.Stderr, "\n") != 1 {
				t.Errorf("stderr = %q, want one line Error: …", r.Stderr)
			}
			r.wantStderr(t, tc.want)
			if strings.Contains(r.Stderr, "--help") {
				t.Errorf("stderr = %q: a missing setting is not a usage error", r.Stderr)
			}
			if r.Stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.Stdout)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s to refuse", d)
			}
		})
	}
}

func TestServeRefusesAnOutdatedSchema(t *testing.T) {
	isolate(t)
	t.Setenv("SIGNAL_KAFKA_BROKERS", closedAddr(t))
	t.Setenv("SIGNAL_AUTH_JWT_SECRET", longSecret)
	t.Setenv("SIGNAL_API_KEYS", longKey)
	r := run(t, "serve", "--database-url", pgtest.NewEmptyDatabase(t))
	r.wantCode(t, 1)
	want := fmt.Sprintf("Error: the database schema is at version 0 and this signalctl needs %d: run `signalctl migrate up`\n", store.LatestVersion())
	if r.Stderr != want {
		t.Errorf("stderr = %q, want %q", r.Stderr, want)
	}
}

// TestServeRunsAndStopsOnCancel runs serve through the CLI with settings
// from every layer: the flag's http.addr beats a broken one in the
// environment and the file; it stops with exit 0 when its context ends.
func TestServeRunsAndStopsOnCancel(t *testing.T) {
	isolate(t)
	broker := testkit.Broker(t)
	t.Setenv("SIGNAL_KAFKA_BROKERS", broker)
	t.Setenv("SIGNAL_API_KEYS", longKey)
	t.Setenv("SIGNAL_HTTP_ADDR", "not an address")
	cfg := writeFile(t, "signal.yaml", "http:\n  addr: also not an address\nauth:\n  jwt_secret: file-secret-0123456789abcdef-0123\n")

	db := pgtest.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	io := &cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, NoColor: true}
	done := make(chan int, 1)
	go func() {
		done <- cli.Execute(ctx, io, []string{"serve", "--config", cfg, "--http-addr", "127.0.0.1:0",
			"--database-url", db, "--log-format", "json", "--log-level", "info"})
	}()

	// The log is JSON on stderr; "signal serving" says where it listens.
	var addr string
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		select {
		case code := <-done:
			t.Fatalf("serve ended with %d: %s", code, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", errOut.String())
		}
		for _, line := range strings.Split(errOut.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "signal serving" {
				addr, _ = rec["http"].(string)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") || addr == "127.0.0.1:0" {
		t.Errorf("listening on %q, want the --http-addr flag's 127.0.0.1 with a chosen port", addr)
	}
	get := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	testkit.Eventually(t, 30*time.Second, "readyz 200", func() bool { return get("/readyz") == 200 })

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d after a graceful stop, want 0: %s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of its context ending")
	}
	for _, line := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("stderr line is not JSON with --log-format json: %q", line)
		}
	}
	if !strings.Contains(errOut.String(), `"signal stopped"`) {
		t.Errorf("no stop message in the log: %s", errOut.String())
	}
	if out.String() != "" {
		t.Errorf("stdout = %q, want nothing without --dev", out.String())
	}
	// The test cluster's role is the postgres superuser.
	if !strings.Contains(errOut.String(), `"level":"WARN","msg":"connected to PostgreSQL as a superuser`) {
		t.Errorf("no warning about the superuser role in the log: %s", errOut.String())
	}
}
