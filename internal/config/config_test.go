package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "signal.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedenceIsFlagThenEnvThenFileThenDefault(t *testing.T) {
	file := writeFile(t, "http:\n  addr: file:1\nkafka:\n  topic: from-file\n  group_id: g-file\nlog:\n  level: warn\n")
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.String("http-addr", "flagdefault:1", "")
	fs.String("topic", "", "")
	if err := fs.Parse([]string{"--http-addr", "flag:1"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SIGNAL_HTTP_ADDR", "env:1")
	t.Setenv("SIGNAL_KAFKA_TOPIC", "from-env")
	t.Setenv("APP_ENV_KAFKA_GROUP_ID", "")
	c, err := Load(file, map[string]*pflag.Flag{"http.addr": fs.Lookup("http-addr"), "kafka.topic": fs.Lookup("topic")})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"flag beats env and file", c.HTTP.Addr, "flag:1"},
		{"env beats file (flag not set)", c.Kafka.Topic, "from-env"},
		{"file beats default", c.Log.Level, "warn"},
		{"default when nothing is set", c.Kafka.ClientID, "SIGNAL_NOTIF_CONSUMER"},
		{"database default", c.Database.URL, DefaultDatabaseURL},
		{"server default", c.Client.Server, DefaultServer},
		{"embedded port default", fmt.Sprint(c.Kafka.EmbeddedPort), fmt.Sprint(DefaultEmbeddedPort)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %q, want %q", ch.name, ch.got, ch.want)
		}
	}
}

func TestSeedEnvironmentNamesAreHonoured(t *testing.T) {
	t.Setenv("APP_ENV_KAFKA_CLIENT_ID", "seed-client")
	t.Setenv("APP_ENV_KAFKA_GROUP_ID", "seed-group")
	t.Setenv("SIGNAL_KAFKA_BROKERS", "k1:9092, k2:9092")
	t.Setenv("SIGNAL_API_KEYS", "a,b")
	t.Setenv("SIGNAL_AUTH_JWT_SECRET", "s3cret")
	t.Setenv("SIGNAL_KAFKA_RESET_OFFSET", "earliest")
	t.Setenv("SIGNAL_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	t.Setenv("SIGNAL_KAFKA_TLS_ENABLED", "true")
	t.Setenv("SIGNAL_WEBSOCKET_CLOSE_WINDOW", "750ms")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.ClientID != "seed-client" || c.Kafka.GroupID != "seed-group" {
		t.Errorf("client/group = %q/%q", c.Kafka.ClientID, c.Kafka.GroupID)
	}
	if len(c.Kafka.Brokers) != 2 || c.Kafka.Brokers[1] != "k2:9092" {
		t.Errorf("brokers = %q", c.Kafka.Brokers)
	}
	if len(c.Auth.APIKeys) != 2 || c.Auth.JWTSecret != "s3cret" || c.Kafka.ResetOffset != "earliest" {
		t.Errorf("auth/reset = %+v %q", c.Auth, c.Kafka.ResetOffset)
	}
	if c.Kafka.SASL.Mechanism != "SCRAM-SHA-512" || !c.Kafka.TLS.Enabled || c.WebSocket.CloseWindow != 750*time.Millisecond {
		t.Errorf("sasl/tls/window = %+v %+v %v", c.Kafka.SASL, c.Kafka.TLS, c.WebSocket.CloseWindow)
	}
}

func TestConfigFileFromEnvironmentAndTemplates(t *testing.T) {
	file := writeFile(t, "templates:\n  REFUND:\n    content: \"Refund {{.Data.id}}\"\n    action_url: /r\nkafka:\n  brokers: [embedded]\n")
	t.Setenv(EnvConfigFile, file)
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Templates["refund"].Content != "Refund {{.Data.id}}" || c.Templates["refund"].ActionURL != "/r" {
		t.Errorf("templates = %+v", c.Templates)
	}
	if !c.UsesEmbeddedBroker() {
		t.Error("brokers [embedded] must select the embedded broker")
	}
}

func TestLoadRejectsBadValuesWithTheKeyName(t *testing.T) {
	tests := map[string]string{
		"SIGNAL_KAFKA_RESET_OFFSET":   "kafka.reset_offset",
		"SIGNAL_KAFKA_SASL_MECHANISM": "kafka.sasl.mechanism",
		"SIGNAL_LOG_FORMAT":           "log.format",
		"SIGNAL_LOG_LEVEL":            "log.level",
	}
	for env, key := range tests {
		t.Run(key, func(t *testing.T) {
			t.Setenv(env, "bogus")
			_, err := Load("", nil)
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("err = %v, want one naming %s", err, key)
			}
		})
	}
	for _, tc := range []struct{ env, value, key string }{
		{"SIGNAL_HTTP_TLS_CERT_FILE", "/etc/signal/tls.crt", "http.tls_key_file"}, // one of the pair
		{"SIGNAL_HTTP_TRUSTED_PROXIES", "10.0.0.0/8,not-a-cidr", "http.trusted_proxies"},
		{"SIGNAL_OTEL_ENDPOINT", "collector:4318", "otel.endpoint"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			if _, err := Load("", nil); err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("%s=%s: err = %v, want one naming %s", tc.env, tc.value, err, tc.key)
			}
		})
	}
	t.Run("good section 9 values", func(t *testing.T) {
		t.Setenv("SIGNAL_HTTP_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7 ,fd00::/8")
		t.Setenv("SIGNAL_OTEL_ENDPOINT", "http://127.0.0.1:4318")
		c, err := Load("", nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParsePrefixes(c.HTTP.TrustedProxies)
		if err != nil || len(p) != 3 || p[1].String() != "192.0.2.7/32" {
			t.Errorf("trusted proxies %v (%v)", p, err)
		}
	})
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(writeFile(t, "http: [unclosed"), nil); err == nil {
		t.Error("a broken YAML file must be an error")
	}
}

func TestFieldsCoverTheContractKeys(t *testing.T) {
	want := map[string]string{
		"database.url": "SIGNAL_DATABASE_URL", "kafka.brokers": "SIGNAL_KAFKA_BROKERS", "kafka.topic": "SIGNAL_KAFKA_TOPIC",
		"kafka.client_id": "APP_ENV_KAFKA_CLIENT_ID", "kafka.group_id": "APP_ENV_KAFKA_GROUP_ID",
		"kafka.reset_offset": "SIGNAL_KAFKA_RESET_OFFSET", "kafka.sasl.mechanism": "SIGNAL_KAFKA_SASL_MECHANISM",
		"kafka.sasl.username": "SIGNAL_KAFKA_SASL_USERNAME", "kafka.sasl.password": "SIGNAL_KAFKA_SASL_PASSWORD",
		"kafka.tls.enabled": "SIGNAL_KAFKA_TLS_ENABLED", "kafka.tls.ca_file": "SIGNAL_KAFKA_TLS_CA_FILE",
		"kafka.tls.cert_file": "SIGNAL_KAFKA_TLS_CERT_FILE", "kafka.tls.key_file": "SIGNAL_KAFKA_TLS_KEY_FILE",
		"http.addr": "SIGNAL_HTTP_ADDR", "auth.jwt_secret": "SIGNAL_AUTH_JWT_SECRET", "auth.api_keys": "SIGNAL_API_KEYS",
		"client.server": "SIGNAL_SERVER", "client.api_key": "SIGNAL_API_KEY",
		// Contract section 8.
		"auth.jwks_url": "SIGNAL_AUTH_JWKS_URL", "auth.public_key_file": "SIGNAL_AUTH_PUBLIC_KEY_FILE",
		"auth.audience": "SIGNAL_AUTH_AUDIENCE", "auth.issuer": "SIGNAL_AUTH_ISSUER",
		"auth.max_token_ttl": "SIGNAL_AUTH_MAX_TOKEN_TTL", "http.metrics_addr": "SIGNAL_HTTP_METRICS_ADDR",
		// Contract section 9.
		"http.tls_cert_file": "SIGNAL_HTTP_TLS_CERT_FILE", "http.tls_key_file": "SIGNAL_HTTP_TLS_KEY_FILE",
		"http.trusted_proxies": "SIGNAL_HTTP_TRUSTED_PROXIES", "otel.endpoint": "SIGNAL_OTEL_ENDPOINT",
	}
	got := map[string]string{}
	for _, f := range Fields() {
		got[f.Key] = f.Env
	}
	for k, env := range want {
		if got[k] != env {
			t.Errorf("%s: env %q, want %q", k, got[k], env)
		}
	}
}

func TestRetentionTakesDaysOrAGoDuration(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"0", 0, true},
		{"36h", 36 * time.Hour, true},
		{"1d", 24 * time.Hour, true},
		{"-1h", 0, false},
		{"ninety", 0, false},
		{"9.5d", 0, false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			t.Setenv("SIGNAL_NOTIFICATIONS_RETENTION", tt.in)
			c, err := Load("", nil)
			if !tt.ok {
				if err == nil {
					t.Fatalf("%q loaded as %s", tt.in, c.Notifications.Retention.Duration())
				}
				return
			}
			if err != nil || c.Notifications.Retention.Duration() != tt.want {
				t.Fatalf("%q: %v, %v; want %s", tt.in, c, err, tt.want)
			}
		})
	}
	t.Setenv("SIGNAL_NOTIFICATIONS_RETENTION", "")
	if c, err := Load("", nil); err != nil || c.Notifications.Retention.Duration() != 90*24*time.Hour {
		t.Errorf("default retention: %v, %v", c, err)
	}
}

func TestLoadRefusesUnsafeLimits(t *testing.T) {
	tests := map[string]string{
		"SIGNAL_HTTP_READ_TIMEOUT=0s":    "http.read_timeout",
		"SIGNAL_HTTP_IDLE_TIMEOUT=-1s":   "http.idle_timeout",
		"SIGNAL_HTTP_MAX_HEADER_BYTES=1": "http.max_header_bytes",
		"SIGNAL_AUTH_MAX_TOKEN_TTL=-1h":  "auth.max_token_ttl",
		"SIGNAL_SHUTDOWN_TIMEOUT=1s":     "shutdown.timeout (1s) must be longer than websocket.close_window (2s)",
	}
	for env, want := range tests {
		t.Run(env, func(t *testing.T) {
			k, v, _ := strings.Cut(env, "=")
			t.Setenv(k, v)
			if _, err := Load("", nil); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want one naming %s", err, want)
			}
		})
	}
}

// A key the configuration does not have is refused, named with its line
// and the closest known key, instead of silently leaving the default in
// place (issue 27, item 4).
func TestUnknownKeysInTheFileAreRefusedWithTheClosestKnownOne(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"a typo in a section", "http:\n  adr: 127.0.0.1:9999\n", []string{"line 2: unknown key http.adr (did you mean http.addr?)"}},
		{"a section typo", "kafak:\n  topic: t\n", []string{"line 1: unknown key kafak (did you mean kafka?)"}},
		{"a key at the wrong level", "addr: 127.0.0.1:9999\n", []string{"line 1: unknown key addr"}},
		{"a template field", "templates:\n  REFUND_ISSUED:\n    contnet: \"x\"\n", []string{"line 3: unknown key templates.REFUND_ISSUED.contnet (did you mean templates.REFUND_ISSUED.content?)"}},
		{"two at once", "http:\n  addr: 127.0.0.1:1\n  read_timeot: 5s\nlog:\n  levle: debug\n", []string{
			"line 3: unknown key http.read_timeot (did you mean http.read_timeout?)", "line 5: unknown key log.levle (did you mean log.level?)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tc.body), nil)
			if err == nil {
				t.Fatalf("loaded %q", tc.body)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// Known keys in any case, nested or dotted, and any template name load.
	for _, body := range []string{
		"HTTP:\n  Addr: 127.0.0.1:9999\n",
		"templates:\n  refund_issued:\n    content: \"{{.Actor.Name}}\"\n    action_url: \"/r\"\n",
		"kafka:\n  sasl:\n    mechanism: PLAIN\n  tls:\n    enabled: false\n",
	} {
		if _, err := Load(writeFile(t, body), nil); err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
}

// A SIGNAL_ variable that names no key draws a warning with the closest
// one; the variables that are not keys but are read (SIGNAL_CONFIG, …) do not.
func TestUnknownSignalVariablesAreWarnedAbout(t *testing.T) {
	got := UnknownEnv([]string{"SIGNAL_HTTP_ADRR=x", "SIGNAL_HTTP_ADDR=y", "SIGNAL_CONFIG=", "SIGNAL_TEST_DATABASE_URL=z",
		"SIGNAL_DEV_STATE=s", "SIGNAL_NONSENSE_THING=1", "PATH=/bin", "APP_ENV_KAFKA_GROUP_ID=g"})
	want := []string{
		"SIGNAL_HTTP_ADRR is set but is not a configuration variable: it changes nothing (did you mean SIGNAL_HTTP_ADDR?)",
		"SIGNAL_NONSENSE_THING is set but is not a configuration variable: it changes nothing",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Setenv("SIGNAL_KAFKA_BROKER", "k:9092")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "did you mean SIGNAL_KAFKA_BROKERS?") {
		t.Errorf("Load's warnings: %q", c.Warnings)
	}
}
