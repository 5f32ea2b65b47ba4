package e2e

import (
	"net/http"
	"testing"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/testkit"
)

// Behind a trusted proxy every client arrives from the proxy's address:
// the upgrade rate limit must count the address the proxy forwards for,
// and only when the peer is a trusted proxy.
func TestTheUpgradeRateCountsTheForwardedClientOnlyFromTrustedProxies(t *testing.T) {
	env := testkit.NewEnv(t)
	limits := func(c *config.Config) {
		c.WebSocket.UpgradeRate = 0.001 // a spent burst does not refill during the test
		c.WebSocket.UpgradeBurst = 2
		c.WebSocket.MaxConnectionsPerSubject = 0
	}
	dial := func(in *testkit.Instance, header http.Header) int {
		t.Helper()
		c, resp, err := testkit.TryDialWith(t, in.WSURL(), testkit.Token(t, "u1"), testkit.DialOptions{Header: header})
		if err != nil {
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			return resp.StatusCode
		}
		c.Welcome()
		return 101
	}
	xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }
	fwd := func(v string) http.Header { return http.Header{"Forwarded": {v}} }

	t.Run("from a trusted proxy", func(t *testing.T) {
		in := env.Serve(t, func(c *config.Config) { limits(c); c.HTTP.TrustedProxies = []string{"127.0.0.0/8"} })
		// Three clients behind the proxy, two upgrades each: nobody is refused,
		// though the proxy (127.0.0.1) opened six.
		for i := 0; i < 2; i++ {
			for _, h := range []http.Header{xff("203.0.113.1"), xff("198.51.100.2, 203.0.113.2"), fwd(`for="[2001:db8::3]:4711"`)} {
				if got := dial(in, h); got != 101 {
					t.Fatalf("round %d, client %v: %d, want 101", i, h, got)
				}
			}
		}
		// The third upgrade of one client is refused, whatever it writes
		// at the left of the list: the rightmost untrusted hop counts.
		if got := dial(in, xff("203.0.113.1")); got != http.StatusTooManyRequests {
			t.Fatalf("third upgrade of 203.0.113.1: %d, want 429", got)
		}
		if got := dial(in, xff("192.0.2.99, 203.0.113.1")); got != http.StatusTooManyRequests {
			t.Fatalf("third upgrade of 203.0.113.1 with a spoofed hop on its left: %d, want 429", got)
		}
	})
	t.Run("from anyone else the headers are ignored", func(t *testing.T) {
		// Proxies are trusted, but 127.0.0.1 is not one of them.
		in := env.Serve(t, func(c *config.Config) { limits(c); c.HTTP.TrustedProxies = []string{"10.0.0.0/8"} })
		for i, h := range []http.Header{xff("203.0.113.1"), xff("203.0.113.2")} {
			if got := dial(in, h); got != 101 {
				t.Fatalf("upgrade %d: %d, want 101", i, got)
			}
		}
		if got := dial(in, xff("203.0.113.3")); got != http.StatusTooManyRequests {
			t.Fatalf("third upgrade from 127.0.0.1 under a new X-Forwarded-For: %d, want 429 (the header must be ignored)", got)
		}
	})
}
