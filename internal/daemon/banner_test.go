package daemon

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/devstate"
)

// The commands the development banner suggests reach the instance that
// printed it, a second one on another port included.
func TestTheBannerSuggestsCommandsThatReachThisInstance(t *testing.T) {
	t.Setenv(config.EnvConfigFile, "")
	t.Setenv("SIGNAL_SERVER", "")
	t.Setenv(devstate.EnvPath, filepath.Join(t.TempDir(), "dev.json"))
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, addr string
		brokers    []string
		want, not  []string
	}{
		{"the first instance, on the defaults", "127.0.0.1:8080", []string{"127.0.0.1:9092"},
			[]string{"signalctl tail --room signal/notification/u1\n", "signalctl produce --scope users --recipients u1\n"}, []string{"--server", "--brokers"}},
		{"a second instance on port 8081", "127.0.0.1:8081", []string{"127.0.0.1:9092"},
			[]string{"signalctl tail --room signal/notification/u1 --server http://127.0.0.1:8081\n"}, []string{"--brokers"}},
		// The CLI of the clone finds the instance that runs the embedded
		// broker, and its broker, in the dev state (issue 27, item 1).
		{"the embedded broker's instance on other ports", "127.0.0.1:38080", nil,
			[]string{"signalctl tail --room signal/notification/u1\n", "signalctl produce --scope users --recipients u1\n"}, []string{"--server", "--brokers"}},
		{"an instance on another broker", "127.0.0.1:8080", []string{"127.0.0.1:19092"},
			[]string{"signalctl produce --scope users --recipients u1 --brokers 127.0.0.1:19092\n"}, []string{"--server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cfg := *cfg
			if tt.brokers == nil { // make run's instance, wherever it listens
				cfg.Kafka.Brokers = []string{config.Embedded}
				tt.brokers = []string{"127.0.0.1:39092"}
			}
			printBanner(&out, &cfg, Info{HTTPAddr: tt.addr, Brokers: tt.brokers, DevToken: "tok", DevAPIKey: "key"})
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("banner lacks %q:\n%s", w, out.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("banner has %q:\n%s", n, out.String())
				}
			}
		})
	}
}
