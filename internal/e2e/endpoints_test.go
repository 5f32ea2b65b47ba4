package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/kafka"
	"github.com/signal-notify/signal/internal/testkit"
)

// /readyz needs no credential: during an outage it says which check fails,
// never how (no host, port, user or error text); /status, behind an API
// key, has the details.
func TestReadyzNamesTheFailingCheckWithoutInternals(t *testing.T) {
	t.Parallel()
	broker, err := kafka.StartEmbedded(0, testkit.Topic)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(broker.Addr)
	env := testkit.NewEnv(t)
	env.Broker = broker.Addr
	in := env.Serve(t, nil)

	broker.Close() // Kafka goes away
	var raw string
	testkit.Eventually(t, 20*time.Second, "/readyz to report Kafka down", func() bool {
		code, body := call(t, "GET", in.URL()+"/readyz", "", nil)
		b, _ := json.Marshal(body)
		raw = string(b)
		checks, _ := body["checks"].(map[string]any)
		return code == http.StatusServiceUnavailable && checks["kafka"] == "failing"
	})
	for _, secret := range []string{port, "127.0.0.1", "dial", "refused", "brokers"} {
		if strings.Contains(raw, secret) {
			t.Errorf("/readyz without a credential shows %q: %s", secret, raw)
		}
	}
	code, status := call(t, "GET", in.URL()+"/status", testkit.APIKey, nil)
	checks, _ := status["checks"].(map[string]any)
	if detail, _ := checks["kafka"].(string); code != 200 || !strings.Contains(detail, "brokers unreachable") {
		t.Errorf("/status with the API key: %d %v, want the details of the kafka check", code, checks)
	}

	// Kafka comes back on the same address, so the instance stops cleanly.
	p, _ := strconv.Atoi(port)
	again, err := kafka.StartEmbedded(p, testkit.Topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
}

func TestMetricsOnTheirOwnListener(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, func(c *config.Config) { c.HTTP.MetricsAddr = "127.0.0.1:0" })
	if in.Info.MetricsAddr == "" || in.Info.MetricsAddr == in.Info.HTTPAddr {
		t.Fatalf("metrics address %q", in.Info.MetricsAddr)
	}
	resp, err := http.Get("http://" + in.Info.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "signal_websocket_connections") {
		t.Errorf("metrics listener: %d %.200s", resp.StatusCode, b)
	}
	if code := get(t, in.URL()+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on http.addr: %d, want 404 once http.metrics_addr is set", code)
	}
	if code, _ := call(t, "GET", in.URL()+"/readyz", "", nil); code != 200 {
		t.Errorf("/readyz on http.addr: %d", code)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
