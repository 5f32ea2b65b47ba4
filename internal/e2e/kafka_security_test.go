package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/signal-notify/signal/internal/launch"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/testkit"
)

// secureBroker starts an in-process broker (kfake, as the embedded one)
// with the topic and the given security options.
func secureBroker(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(4, testkit.Topic),
		kfake.GroupMinSessionTimeout(500 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// securityCase is a broker that requires something, and the settings
// (environment) that satisfy it — or, for the refused cases, do not.
type securityCase struct {
	name   string
	broker []kfake.Opt
	env    []string
}

func securityCases(t *testing.T) (good, bad []securityCase) {
	ca := newPKI(t, "signal")
	other := newPKI(t, "another")
	sasl := func(mech, user, pass string) []string {
		return []string{"SIGNAL_KAFKA_SASL_MECHANISM=" + mech, "SIGNAL_KAFKA_SASL_USERNAME=" + user, "SIGNAL_KAFKA_SASL_PASSWORD=" + pass}
	}
	tlsEnv := func(p *pki, client bool) []string {
		e := []string{"SIGNAL_KAFKA_TLS_ENABLED=true", "SIGNAL_KAFKA_TLS_CA_FILE=" + p.CAFile}
		if client {
			e = append(e, "SIGNAL_KAFKA_TLS_CERT_FILE="+p.CertFile, "SIGNAL_KAFKA_TLS_KEY_FILE="+p.KeyFile)
		}
		return e
	}
	good = []securityCase{
		{"SASL PLAIN", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", "signal", "plain-secret")}, sasl("PLAIN", "signal", "plain-secret")},
		{"SASL SCRAM-SHA-256", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "signal", "scram-256-secret")}, sasl("SCRAM-SHA-256", "signal", "scram-256-secret")},
		{"SASL SCRAM-SHA-512", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "signal", "scram-512-secret")}, sasl("SCRAM-SHA-512", "signal", "scram-512-secret")},
		{"TLS verifying the broker", []kfake.Opt{kfake.TLS(ca.serverTLS(false))}, tlsEnv(ca, false)},
		{"TLS with a client certificate", []kfake.Opt{kfake.TLS(ca.serverTLS(true))}, tlsEnv(ca, true)},
		{"SCRAM-SHA-512 over TLS with a client certificate", []kfake.Opt{kfake.TLS(ca.serverTLS(true)), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "signal", "both")},
			append(tlsEnv(ca, true), sasl("SCRAM-SHA-512", "signal", "both")...)},
	}
	bad = []securityCase{
		{"a wrong SCRAM password", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "signal", "right")}, sasl("SCRAM-SHA-256", "signal", "wrong")},
		{"a wrong PLAIN user", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", "signal", "right")}, sasl("PLAIN", "nobody", "right")},
		{"a broker certificate from an untrusted CA", []kfake.Opt{kfake.TLS(other.serverTLS(false))}, tlsEnv(ca, false)},
		{"no client certificate where one is required", []kfake.Opt{kfake.TLS(ca.serverTLS(true))}, tlsEnv(ca, false)},
		{"a client certificate from an untrusted CA", []kfake.Opt{kfake.TLS(ca.serverTLS(true))}, append(tlsEnv(ca, false), "SIGNAL_KAFKA_TLS_CERT_FILE="+other.CertFile, "SIGNAL_KAFKA_TLS_KEY_FILE="+other.KeyFile)},
	}
	return good, bad
}

// serve consumes, and `signalctl produce` produces, through a broker that
// requires SASL, TLS or both: the notification is stored and pushed.
func TestServeAndProduceWorkWithSASLAndTLS(t *testing.T) {
	t.Parallel()
	good, _ := securityCases(t)
	for _, tc := range good {
		t.Run("with "+tc.name, func(t *testing.T) {
			t.Parallel()
			st, url := pgtest.Open(t)
			env := &testkit.Env{Broker: secureBroker(t, tc.broker...), DBURL: url, Store: st}
			p := startServe(t, env, tc.env...)
			c := testkit.Dial(t, p.wsURL(), testkit.Token(t, "u1"))
			c.Welcome()

			cmd := launch.Command(signalctl(t), "produce", "--scope", "users", "--recipients", "u1", "--data", `{"case":"`+tc.name+`"}`)
			cmd.Env = append(os.Environ(), "SIGNAL_CONFIG=", "SIGNAL_KAFKA_BROKERS="+env.Broker)
			cmd.Env = append(cmd.Env, tc.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("produce: %v\n%s", err, out)
			}
			f := c.Expect("observation/signal/notification/created")
			if !strings.Contains(string(f.Data), tc.name) {
				t.Errorf("frame %s", f.Data)
			}
			if n := testkit.Count(t, st, `SELECT count(*) FROM notifications WHERE data->>'case' = $1`, tc.name); n != 1 {
				t.Errorf("%d rows, want 1", n)
			}
		})
	}
}

// Refused credentials or certificates: serve keeps running (no crash
// loop), /readyz answers 503, /status (behind the API key) names the
// setting to fix, and the log says it once, not at every retry.
func TestRefusedCredentialsGiveOneClearErrorAndANotReadyInstance(t *testing.T) {
	t.Parallel()
	_, bad := securityCases(t)
	want := map[string]string{
		"a wrong SCRAM password":                      "(kafka.sasl.mechanism, kafka.sasl.username, kafka.sasl.password)",
		"a wrong PLAIN user":                          "(kafka.sasl.mechanism, kafka.sasl.username, kafka.sasl.password)",
		"a broker certificate from an untrusted CA":   "not signed by a trusted CA (kafka.tls.ca_file)",
		"no client certificate where one is required": "refused our TLS client certificate",
		"a client certificate from an untrusted CA":   "refused our TLS client certificate",
	}
	for _, tc := range bad {
		t.Run("with "+tc.name, func(t *testing.T) {
			t.Parallel()
			st, url := pgtest.Open(t)
			env := &testkit.Env{Broker: secureBroker(t, tc.broker...), DBURL: url, Store: st}
			p := launchServe(t, env, tc.env...)
			const watch = 6 * time.Second
			start := time.Now()
			var last string
			for time.Since(start) < watch {
				if p.exited() {
					t.Fatalf("serve exited (a crash loop under a supervisor):\n%s", p.logs.String())
				}
				ready, rerr := http.Get("http://" + p.addr + "/readyz")
				if rerr == nil {
					ready.Body.Close()
					if ready.StatusCode == 200 {
						t.Fatalf("ready with %s", tc.name)
					}
				}
				req, _ := http.NewRequest("GET", "http://"+p.addr+"/status", nil)
				req.Header.Set("Authorization", "Bearer "+testkit.APIKey)
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					var body struct {
						Checks map[string]string `json:"checks"`
					}
					_ = json.NewDecoder(resp.Body).Decode(&body)
					resp.Body.Close()
					last = body.Checks["kafka"]
				}
				time.Sleep(200 * time.Millisecond)
			}
			if !strings.Contains(last, want[tc.name]) {
				t.Errorf("status kafka check %q, want it to say %q", last, want[tc.name])
			}
			var problems, mentions int
			for _, line := range strings.Split(p.logs.String(), "\n") {
				if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
					problems++
				}
				if strings.Contains(line, want[tc.name]) {
					mentions++
				}
			}
			if mentions == 0 {
				t.Errorf("the log never says %q:\n%s", want[tc.name], p.logs.String())
			}
			// One line from Signal, and at most a few from the Kafka client
			// (one per distinct message, each once a minute).
			if problems > 4 {
				t.Errorf("%d warning or error lines in %s: the log floods:\n%s", problems, watch, p.logs.String())
			}
			t.Logf("status: %s; %d warning/error lines in %s", last, problems, watch)
		})
	}
}
