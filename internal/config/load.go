package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"reflect"
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
// checked by serve.
func (c *Config) validate() error {
	var errs []error
	switch c.Kafka.ResetOffset {
	case "latest", "earliest":
	default:
		errs = append(errs, fmt.Errorf("kafka.reset_offset must be latest or earliest, got %q", c.Kafka.ResetOffset))
	}
	switch strings.ToUpper(c.Kafka.SASL.Mechanism) {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		errs = append(errs, fmt.Errorf("kafka.sasl.mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", c.Kafka.SASL.Mechanism))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format must be text or json, got %q", c.Log.Format))
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level must be debug, info, warn or error, got %q", c.Log.Level))
	}
	if c.Ingest.MaxRowsPerTx < 1 || c.Ingest.MaxRowsPerTx > 1<<20 {
		errs = append(errs, fmt.Errorf("ingest.max_rows_per_tx must be from 1 to 1048576, got %d", c.Ingest.MaxRowsPerTx))
	}
	in := c.Ingest
	if in.MaxDataBytes < 1024 || in.MaxRowBytes < in.MaxDataBytes+4096 || in.MaxRowsPerRecord < 1 || in.MaxBytesPerRecord < int64(in.MaxRowBytes) {
		errs = append(errs, fmt.Errorf("ingest.max_data_bytes must be at least 1024, ingest.max_row_bytes at least max_data_bytes + 4096, ingest.max_rows_per_record at least 1 and ingest.max_bytes_per_record at least max_row_bytes (got %d, %d, %d, %d)",
			in.MaxDataBytes, in.MaxRowBytes, in.MaxRowsPerRecord, in.MaxBytesPerRecord))
	}
	if in.MaxClockSkew < time.Second || in.MaxClockSkew > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("ingest.max_clock_skew must be from 1s to 168h (partitions are kept 7 days ahead), got %s", in.MaxClockSkew))
	}
	if c.HTTP.MaxConnections < 0 || c.HTTP.MaxConnectionsPerIP < 0 {
		errs = append(errs, errors.New("http.max_connections and http.max_connections_per_ip must not be negative (0: the default, and no limit per address)"))
	}
	if c.Kafka.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("kafka.batch_size must be at least 1, got %d", c.Kafka.BatchSize))
	}
	ws := c.WebSocket
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
	if ws.MaxConnections < 0 || ws.MaxConnectionsPerSubject < 0 || ws.UpgradeRate < 0 || ws.ActionRate < 0 || ws.UpgradeBurst < 1 || ws.ActionBurst < 1 {
		errs = append(errs, errors.New("websocket.max_connections, max_connections_per_subject, upgrade_rate and action_rate must not be negative (0: no limit), upgrade_burst and action_burst at least 1"))
	}
	if ws.ActionRate > 0 && ws.ActionBurst < 10 {
		errs = append(errs, fmt.Errorf("websocket.action_burst must be at least 10 (a join with since counts 10 actions), got %d", ws.ActionBurst))
	}
	if c.HTTP.ReadHeaderTimeout <= 0 || c.HTTP.ReadTimeout <= 0 || c.HTTP.WriteTimeout <= 0 || c.HTTP.IdleTimeout <= 0 {
		errs = append(errs, errors.New("http.read_header_timeout, http.read_timeout, http.write_timeout and http.idle_timeout must be positive"))
	}
	if c.HTTP.MaxHeaderBytes < 4096 {
		errs = append(errs, fmt.Errorf("http.max_header_bytes must be at least 4096, got %d", c.HTTP.MaxHeaderBytes))
	}
	if (c.HTTP.TLSCertFile == "") != (c.HTTP.TLSKeyFile == "") {
		errs = append(errs, errors.New("http.tls_cert_file and http.tls_key_file must be set together"))
	}
	if _, err := ParsePrefixes(c.HTTP.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("http.trusted_proxies: %w", err))
	}
	if e := c.OTel.Endpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("otel.endpoint must be an http:// or https:// URL, got %q", e))
		}
	}
	if c.Auth.MaxTokenTTL < 0 {
		errs = append(errs, fmt.Errorf("auth.max_token_ttl must be 0 (no limit) or positive, got %s", c.Auth.MaxTokenTTL))
	}
	if c.Shutdown.Timeout <= c.WebSocket.CloseWindow {
		errs = append(errs, fmt.Errorf("shutdown.timeout (%s) must be longer than websocket.close_window (%s)", c.Shutdown.Timeout, c.WebSocket.CloseWindow))
	}
	// Templates are compiled here, so a broken one is reported before any
	// command connects to anything (serve, deadletters replay).
	if _, err := event.NewRenderer(c.Templates); err != nil {
		errs = append(errs, fmt.Errorf("templates: %w", err))
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
