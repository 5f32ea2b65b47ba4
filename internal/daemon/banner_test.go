package daemon

import (
	"bytes"
	"strings"
	"testing"

	"github.com/signal-notify/signal/internal/config"
)

// The commands the development banner suggests reach the instance that
// printed it, a second one on another port included.
func TestTheBannerSuggestsCommandsThatReachThisInstance(t *testing.T) {
	t.Setenv(config.EnvConfigFile, "")
	t.Setenv("SIGNAL_SERVER", "")
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
		{"an instance on another broker", "127.0.0.1:8080", []string{"127.0.0.1:19092"},
			[]string{"signalctl produce --scope users --recipients u1 --brokers 127.0.0.1:19092\n"}, []string{"--server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			printBanner(&out, cfg, Info{HTTPAddr: tt.addr, Brokers: tt.brokers, DevToken: "tok", DevAPIKey: "key"})
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
