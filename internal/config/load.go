package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/signal-notify/signal/internal/event"
)

// EnvConfigFile names the config file when --config is not given.
const EnvConfigFile = "SIGNAL_CONFIG"

// Field is one configuration key.
type Field struct {
	Key     string
	Env     string
	Default string
	Desc    string
	Type    string
	Secret  bool
}

// Fields lists every key of Config in declaration order.
func Fields() []Field {
	var out []Field
	walk(reflect.TypeOf(Config{}), "", &out)
	return out
}

func walk(t reflect.Type, prefix string, out *[]Field) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("mapstructure") == "-" {
			continue
		}
		key := prefix + f.Tag.Get("mapstructure")
		if f.Type.Kind() == reflect.Struct && f.Type.String() != "time.Duration" {
			walk(f.Type, key+".", out)
			continue
		}
		env := f.Tag.Get("env")
		if env == "" && f.Tag.Get("noenv") == "" {
			env = "SIGNAL_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		}
		typ := f.Type.String()
		switch typ {
		case "[]string":
			typ = "list"
		case "time.Duration":
			typ = "duration"
		case "config.Age":
			typ = "duration or Nd"
		case "int32":
			typ = "int"
		case "float64":
			typ = "number"
		}
		if f.Type.Kind() == reflect.Map {
			typ = "map"
		}
		*out = append(*out, Field{Key: key, Env: env, Default: f.Tag.Get("default"), Desc: f.Tag.Get("desc"), Type: typ, Secret: f.Tag.Get("secret") != ""})
	}
}

// Load reads the configuration: flags (keyed by config key, bound only when
// set on the command line) over the environment, over the file (path, or
// $SIGNAL_CONFIG), over the defaults.
func Load(path string, flags map[string]*pflag.Flag) (*Config, error) {
	v := viper.New()
	for _, f := range Fields() {
		if f.Default != "" {
			v.SetDefault(f.Key, f.Default)
		}
		if f.Env != "" {
			if err := v.BindEnv(f.Key, f.Env); err != nil {
				return nil, err
			}
		}
	}
	if path == "" {
		path = os.Getenv(EnvConfigFile)
	}
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("config file %s does not exist", path)
			}
			return nil, fmt.Errorf("read config file %s: %w", path, err)
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config file %s: %w", path, err)
		}
		if err := checkFileKeys(path, body); err != nil {
			return nil, err
		}
	}
	for key, fl := range flags {
		if fl == nil {
			return nil, fmt.Errorf("config: no flag bound to %s", key)
		}
		if err := v.BindPFlag(key, fl); err != nil {
			return nil, err
		}
	}
	var c Config
	err := v.Unmarshal(&c, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = false
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			ageHook,
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.Warnings = UnknownEnv(os.Environ())
	c.Kafka.Brokers = cleanList(c.Kafka.Brokers)
	c.Auth.APIKeys = cleanList(c.Auth.APIKeys)
	c.HTTP.TrustedProxies = cleanList(c.HTTP.TrustedProxies)
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// validate checks values every command relies on; what only serve needs is
// checked by serve. Every rule is looked at, and all that fail are reported
// together, in the order of validations.
func (c *Config) validate() error {
	var errs []error
	for _, check := range validations {
		err := check(c)
		// A section's errors join the others one by one, not as a group.
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			errs = append(errs, joined.Unwrap()...)
		} else if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validations are validate's rules, one a setting or a group of settings
// that go together, each nil when the configuration keeps it.
var validations = []func(c *Config) error{
	func(c *Config) error {
		return oneOf("kafka.reset_offset", c.Kafka.ResetOffset, c.Kafka.ResetOffset, "latest", "earliest")
	},
	func(c *Config) error {
		if c.Kafka.SASL.Mechanism == "" {
			return nil
		}
		return oneOf("kafka.sasl.mechanism", c.Kafka.SASL.Mechanism, strings.ToUpper(c.Kafka.SASL.Mechanism), "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
	},
	func(c *Config) error { return oneOf("log.format", c.Log.Format, c.Log.Format, "text", "json") },
	func(c *Config) error {
		return oneOf("log.level", c.Log.Level, strings.ToLower(c.Log.Level), "debug", "info", "warn", "error")
	},
	validateIngest,
	func(c *Config) error {
		if c.HTTP.MaxConnections < 0 || c.HTTP.MaxConnectionsPerIP < 0 {
			return errors.New("http.max_connections and http.max_connections_per_ip must not be negative (0: the default, and no limit per address)")
		}
		return nil
	},
	func(c *Config) error {
		if c.Kafka.BatchSize < 1 {
			return fmt.Errorf("kafka.batch_size must be at least 1, got %d", c.Kafka.BatchSize)
		}
		return nil
	},
	validateWebSocketSizes,
	validateWebSocketLimits,
	validateHTTP,
	func(c *Config) error {
		if _, err := ParsePrefixes(c.HTTP.TrustedProxies); err != nil {
			return fmt.Errorf("http.trusted_proxies: %w", err)
		}
		return nil
	},
	func(c *Config) error {
		e := c.OTel.Endpoint
		if e == "" {
			return nil
		}
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("otel.endpoint must be an http:// or https:// URL, got %q", e)
		}
		return nil
	},
	func(c *Config) error {
		if c.Auth.MaxTokenTTL < 0 {
			return fmt.Errorf("auth.max_token_ttl must be 0 (no limit) or positive, got %s", c.Auth.MaxTokenTTL)
		}
		return nil
	},
	func(c *Config) error {
		if c.Shutdown.Timeout <= c.WebSocket.CloseWindow {
			return fmt.Errorf("shutdown.timeout (%s) must be longer than websocket.close_window (%s)", c.Shutdown.Timeout, c.WebSocket.CloseWindow)
		}
		return nil
	},
	// Templates are compiled here, so a broken one is reported before any
	// command connects to anything (serve, deadletters replay).
	func(c *Config) error {
		if _, err := event.NewRenderer(c.Templates); err != nil {
			return fmt.Errorf("templates: %w", err)
		}
		return nil
	},
}

// oneOf says which values name may take when norm, got as normalised
// (case), is none of them.
func oneOf(name, got, norm string, allowed ...string) error {
	if slices.Contains(allowed, norm) {
		return nil
	}
	list := allowed[0]
	if n := len(allowed); n > 1 {
		list = strings.Join(allowed[:n-1], ", ") + " or " + allowed[n-1]
	}
	return fmt.Errorf("%s must be %s, got %q", name, list, got)
}

// validateIngest checks ingest.*: rows per transaction, the size limits
// (each must hold the one before it) and the clock skew accepted.
func validateIngest(c *Config) error {
	in := c.Ingest
	var errs []error
	if in.MaxRowsPerTx < 1 || in.MaxRowsPerTx > 1<<20 {
		errs = append(errs, fmt.Errorf("ingest.max_rows_per_tx must be from 1 to 1048576, got %d", in.MaxRowsPerTx))
	}
	if in.MaxDataBytes < 1024 || in.MaxRowBytes < in.MaxDataBytes+4096 || in.MaxRowsPerRecord < 1 || in.MaxBytesPerRecord < int64(in.MaxRowBytes) {
		errs = append(errs, fmt.Errorf("ingest.max_data_bytes must be at least 1024, ingest.max_row_bytes at least max_data_bytes + 4096, ingest.max_rows_per_record at least 1 and ingest.max_bytes_per_record at least max_row_bytes (got %d, %d, %d, %d)",
			in.MaxDataBytes, in.MaxRowBytes, in.MaxRowsPerRecord, in.MaxBytesPerRecord))
	}
	if in.MaxClockSkew < time.Second || in.MaxClockSkew > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("ingest.max_clock_skew must be from 1s to 168h (partitions are kept 7 days ahead), got %s", in.MaxClockSkew))
	}
	return errors.Join(errs...)
}

// validateWebSocketSizes checks what one WebSocket client may hold: rooms,
// frame and queue sizes, catch-up reads, the keep-alive.
func validateWebSocketSizes(c *Config) error {
	ws := c.WebSocket
	var errs []error
	if ws.MaxRooms < 1 || ws.MaxMessageBytes < 128 || ws.ReplayLimit < 1 || ws.ReplayReads < 1 {
		errs = append(errs, errors.New("websocket.max_rooms, websocket.replay_limit and websocket.replay_reads must be at least 1, websocket.max_message_bytes at least 128"))
	}
	if ws.ReplayRate < 0 || ws.SyncCheck < 0 {
		errs = append(errs, errors.New("websocket.replay_rate and websocket.sync_check must not be negative"))
	}
	if ws.QueueBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("websocket.queue_bytes must be at least 65536 (64 KiB), got %d", ws.QueueBytes))
	}
	if ws.PingInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("websocket.ping_interval must be at least 10ms, got %s", ws.PingInterval))
	}
	return errors.Join(errs...)
}

// validateWebSocketLimits checks the connection caps and action rates.
func validateWebSocketLimits(c *Config) error {
	ws := c.WebSocket
	var errs []error
	if ws.MaxConnections < 0 || ws.MaxConnectionsPerSubject < 0 || ws.UpgradeRate < 0 || ws.ActionRate < 0 || ws.UpgradeBurst < 1 || ws.ActionBurst < 1 {
		errs = append(errs, errors.New("websocket.max_connections, max_connections_per_subject, upgrade_rate and action_rate must not be negative (0: no limit), upgrade_burst and action_burst at least 1"))
	}
	if ws.ActionRate > 0 && ws.ActionBurst < 10 {
		errs = append(errs, fmt.Errorf("websocket.action_burst must be at least 10 (a join with since counts 10 actions), got %d", ws.ActionBurst))
	}
	return errors.Join(errs...)
}

// validateHTTP checks the HTTP server's timeouts, header size and TLS pair.
func validateHTTP(c *Config) error {
	h := c.HTTP
	var errs []error
	if h.ReadHeaderTimeout <= 0 || h.ReadTimeout <= 0 || h.WriteTimeout <= 0 || h.IdleTimeout <= 0 {
		errs = append(errs, errors.New("http.read_header_timeout, http.read_timeout, http.write_timeout and http.idle_timeout must be positive"))
	}
	if h.MaxHeaderBytes < 4096 {
		errs = append(errs, fmt.Errorf("http.max_header_bytes must be at least 4096, got %d", h.MaxHeaderBytes))
	}
	if (h.TLSCertFile == "") != (h.TLSKeyFile == "") {
		errs = append(errs, errors.New("http.tls_cert_file and http.tls_key_file must be set together"))
	}
	return errors.Join(errs...)
}

// UsesEmbeddedBroker reports whether kafka.brokers asks for the in-process broker.
func (c *Config) UsesEmbeddedBroker() bool {
	return len(c.Kafka.Brokers) == 1 && c.Kafka.Brokers[0] == Embedded
}

// ParsePrefixes reads http.trusted_proxies: CIDRs, or single addresses
// (a /32 or /128).
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
