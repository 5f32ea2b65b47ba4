package config

import (
	"time"

	"github.com/signal-notify/signal/internal/event"
)

// Embedded is the kafka.brokers value that starts the in-process broker.
const Embedded = "embedded"

// Config is everything signalctl can be told. Tags: mapstructure is the key
// part, env the environment variable (default: SIGNAL_ + KEY with dots as
// underscores), default the value when nothing is set, desc the description.
type Config struct {
	Database      Database                      `mapstructure:"database"`
	Kafka         Kafka                         `mapstructure:"kafka"`
	HTTP          HTTP                          `mapstructure:"http"`
	Auth          Auth                          `mapstructure:"auth"`
	WebSocket     WebSocket                     `mapstructure:"websocket"`
	Ingest        Ingest                        `mapstructure:"ingest"`
	Members       Members                       `mapstructure:"members"`
	Cluster       Cluster                       `mapstructure:"cluster"`
	Notifications Notifications                 `mapstructure:"notifications"`
	Shutdown      Shutdown                      `mapstructure:"shutdown"`
	Debug         Debug                         `mapstructure:"debug"`
	Log           Log                           `mapstructure:"log"`
	Client        Client                        `mapstructure:"client"`
	OTel          OTel                          `mapstructure:"otel"`
	Templates     map[string]event.TemplateText `mapstructure:"templates" desc:"per-eventType templates: templates.<TYPE>.content and templates.<TYPE>.action_url (Go text/template over the message; keys are case-insensitive). Built in: PAYMENT_SUCCESS and a generic fallback." noenv:"true"`

	// Warnings are what Load noticed without refusing: SIGNAL_ variables
	// that name no key. The commands print them (serve logs them).
	Warnings []string `mapstructure:"-"`
}

// Database is the PostgreSQL connection.
type Database struct {
	URL      string `mapstructure:"url" env:"SIGNAL_DATABASE_URL" default:"postgres://postgres@127.0.0.1:5432/signal?sslmode=disable" desc:"PostgreSQL connection URL"`
	MaxConns int32  `mapstructure:"max_conns" default:"10" desc:"connections in the pool"`
}

// Kafka is the input.
type Kafka struct {
	Brokers      []string `mapstructure:"brokers" env:"SIGNAL_KAFKA_BROKERS" desc:"seed brokers, comma-separated; \"embedded\" starts an in-process Kafka-protocol broker (development only). serve needs it unless --dev"`
	Topic        string   `mapstructure:"topic" default:"signal.activity-notification" desc:"topic of TActivityNotificationMessage records"`
	ClientID     string   `mapstructure:"client_id" env:"APP_ENV_KAFKA_CLIENT_ID" default:"SIGNAL_NOTIF_CONSUMER" desc:"Kafka client id"`
	GroupID      string   `mapstructure:"group_id" env:"APP_ENV_KAFKA_GROUP_ID" default:"SIGNAL_NOTIF_CONSUMER_GROUP" desc:"consumer group shared by all serve instances"`
	ResetOffset  string   `mapstructure:"reset_offset" default:"latest" desc:"where a group with no committed offset starts: latest or earliest"`
	BatchSize    int      `mapstructure:"batch_size" default:"4000" desc:"most records handled in one database transaction (larger batches amortise the commit: see bench/README.md)"`
	EmbeddedPort int      `mapstructure:"embedded_port" default:"9092" desc:"port of the embedded broker on 127.0.0.1"`
	// A crashed member keeps its partitions until this passes.
	SessionTimeout time.Duration `mapstructure:"session_timeout" default:"6s" desc:"consumer group session timeout: a crashed instance's partitions move to the others after this long (the brokers' group.min.session.timeout.ms is 6s by default); heartbeats are sent every sixth of it"`
	InstanceID     string        `mapstructure:"instance_id" desc:"static group membership (KIP-345): a stable id per instance (e.g. the pod name of a StatefulSet); an instance restarted after a crash takes its place back at once instead of after kafka.session_timeout. Must be unique among the running instances"`
	SASL           SASL          `mapstructure:"sasl"`
	TLS            TLS           `mapstructure:"tls"`
}

// SASL authenticates to the brokers.
type SASL struct {
	Mechanism string `mapstructure:"mechanism" desc:"PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL"`
	Username  string `mapstructure:"username" desc:"SASL user"`
	Password  string `mapstructure:"password" desc:"SASL password" secret:"true"`
}

// TLS encrypts the broker connections.
type TLS struct {
	Enabled  bool   `mapstructure:"enabled" default:"false" desc:"use TLS to the brokers"`
	CAFile   string `mapstructure:"ca_file" desc:"PEM file of CAs to trust (default: the system's)"`
	CertFile string `mapstructure:"cert_file" desc:"PEM client certificate (mutual TLS)"`
	KeyFile  string `mapstructure:"key_file" desc:"PEM client key (mutual TLS)"`
}

// HTTP is the listener of the WebSocket endpoint, the REST API and health.
type HTTP struct {
	Addr string `mapstructure:"addr" default:"127.0.0.1:8080" desc:"listen address of WebSocket, REST, health and metrics"`
	// The limits below bound what one connection costs before it is
	// authenticated (docs/security.md).
	MetricsAddr       string        `mapstructure:"metrics_addr" desc:"listen address of GET /metrics on its own listener (e.g. 127.0.0.1:9090); when set, http.addr no longer serves /metrics. Empty: /metrics on http.addr"`
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout" default:"10s" desc:"longest time to read a request's headers (a client trickling them is cut)"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout" default:"30s" desc:"longest time to read a whole request, headers and body (a body declared and never sent is cut)"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout" default:"30s" desc:"longest time to answer a request; upgraded WebSocket connections are exempt"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout" default:"120s" desc:"a keep-alive connection with no new request for this long is closed (keep it above the load balancer's idle timeout)"`
	MaxHeaderBytes    int           `mapstructure:"max_header_bytes" default:"32768" desc:"largest request line and headers, tokens included; larger is refused with 431"`
	TLSCertFile       string        `mapstructure:"tls_cert_file" desc:"PEM certificate (chain) of http.addr: with http.tls_key_file, serve HTTPS and WSS instead of HTTP and WS. Both files are read again when they change (rotation without restart; checked at most once a second); open connections keep theirs"`
	TLSKeyFile        string        `mapstructure:"tls_key_file" desc:"PEM private key of http.tls_cert_file"`
	TrustedProxies    []string      `mapstructure:"trusted_proxies" desc:"CIDRs (or addresses) of the reverse proxies in front of http.addr, comma-separated: from these peers the client address is taken from X-Forwarded-For or Forwarded (the rightmost hop not in these CIDRs) for the upgrade rate limit and the logs. From any other peer those headers are ignored. Empty: the peer address is the client"`
	// Open connections, idle keep-alives and WebSockets included.
	MaxConnections      int `mapstructure:"max_connections" default:"0" desc:"open TCP connections http.addr accepts (idle keep-alives and WebSockets included); past it a connection may only ask /healthz and /readyz (32 more are kept for them) and is then closed; 0: the open-file limit minus 512"`
	MaxConnectionsPerIP int `mapstructure:"max_connections_per_ip" default:"1000" desc:"open TCP connections one source address may hold on http.addr (IPv6: one /64); past it a new one is answered 429 and closed. Behind a proxy every client shares its address: raise it or set 0 (no limit)"`
}

// Auth holds the secrets of clients and callers.
type Auth struct {
	JWTSecret     string        `mapstructure:"jwt_secret" env:"SIGNAL_AUTH_JWT_SECRET" desc:"HS256 secret of WebSocket and inbox tokens, at least 32 bytes; serve needs it (or auth.public_key_file or auth.jwks_url) unless --dev" secret:"true"`
	APIKeys       []string      `mapstructure:"api_keys" env:"SIGNAL_API_KEYS" desc:"REST API keys, comma-separated, at least 24 characters each: KEY (every scope) or KEY:SCOPE+SCOPE, scopes send, notify, inbox, members, status and admin (keys never contain ':'); serve needs one unless --dev" secret:"true"`
	PublicKeyFile string        `mapstructure:"public_key_file" desc:"PEM public key (RSA 2048+, ECDSA P-256 or Ed25519) verifying RS256, ES256 or EdDSA tokens"`
	JWKSURL       string        `mapstructure:"jwks_url" desc:"JWKS URL whose keys (by kid) verify RS256, ES256 or EdDSA tokens: https://, or http:// on a loopback address. Cached; fetched again for an unknown kid (at most every 10s) and every 10m"`
	Audience      string        `mapstructure:"audience" desc:"when set, a token's aud must include it"`
	Issuer        string        `mapstructure:"issuer" desc:"when set, a token's iss must be it"`
	MaxTokenTTL   time.Duration `mapstructure:"max_token_ttl" default:"720h" desc:"longest accepted token lifetime, exp − iat (exp − now without iat); 0: no limit"`
}

// WebSocket bounds what one client may cost.
type WebSocket struct {
	MaxMessageBytes int           `mapstructure:"max_message_bytes" default:"65536" desc:"largest inbound frame; larger closes the connection with 1009"`
	MaxRooms        int           `mapstructure:"max_rooms" default:"100" desc:"rooms one client may be in at once"`
	ReplayLimit     int           `mapstructure:"replay_limit" default:"50000" desc:"most changes a stream catches up when a client resumes (?since=, join with since); a client further behind gets signal/system/reset and reloads its inbox"`
	ReplayRate      float64       `mapstructure:"replay_rate" default:"2000" desc:"changes per second the catch-ups of one token subject may send, across all its connections; 0: no limit"`
	ReplayReads     int           `mapstructure:"replay_reads" default:"4" desc:"catch-up reads (one page of a stream each) this instance runs at once: thousands of clients resuming together wait their turn instead of loading PostgreSQL"`
	SyncCheck       time.Duration `mapstructure:"sync_check" default:"30s" desc:"how often every live stream is compared with the database and caught up if behind (a safety net: missed pushes are repaired as soon as a later change or a relay reconnection reveals them); 0: never"`
	CloseWindow     time.Duration `mapstructure:"close_window" default:"2s" desc:"at shutdown, clients are closed (1001) spread over this window"`
	// 1 MiB, as Centrifugo: a full replay of ordinary notifications or a
	// large REST frame on top of what the kernel's socket buffer holds.
	QueueBytes   int           `mapstructure:"queue_bytes" default:"1048576" desc:"bytes (data, replay, error and control frames, 64 bytes of bookkeeping each) that may wait for one client; past it the client is closed with 3008. Replaces queue_limit (frames)"`
	PingInterval time.Duration `mapstructure:"ping_interval" default:"30s" desc:"the server pings every client this often; a client that sends nothing (not even a pong), or takes none of what is sent to it, for 3 intervals is disconnected"`
	// Connection limits, checked before the upgrade.
	MaxConnections           int     `mapstructure:"max_connections" default:"0" desc:"connections this instance accepts (503 past it); 0: the open-file limit minus 1,024"`
	MaxConnectionsPerSubject int     `mapstructure:"max_connections_per_subject" default:"32" desc:"connections one token subject may hold on this instance (429 past it); 0: no limit"`
	UpgradeRate              float64 `mapstructure:"upgrade_rate" default:"20" desc:"new connections per second from one source address (IPv6: one /64), refused with 429 past it; 0: no limit. Behind a proxy every client shares its address: raise it or set 0"`
	UpgradeBurst             int     `mapstructure:"upgrade_burst" default:"100" desc:"connections one source address may open at once before upgrade_rate applies"`
	ActionRate               float64 `mapstructure:"action_rate" default:"10" desc:"actions per second one client may send (a join with since counts 10); past it: error rate_limited, and a client a further burst behind is closed with 1008; 0: no limit"`
	ActionBurst              int     `mapstructure:"action_burst" default:"50" desc:"actions one client may send at once before action_rate applies"`
}

// Ingest tunes the Kafka-to-PostgreSQL path.
type Ingest struct {
	RepushWindow time.Duration `mapstructure:"repush_window" default:"5m" desc:"a redelivered record whose rows are younger than this is pushed again (same ids); older ones are not, so a replayed topic does not flood clients"`
	RetryMin     time.Duration `mapstructure:"retry_min" default:"100ms" desc:"first wait before retrying a batch after a transient failure"`
	RetryMax     time.Duration `mapstructure:"retry_max" default:"30s" desc:"longest wait between retries"`
	MaxRowsPerTx int           `mapstructure:"max_rows_per_tx" default:"8192" desc:"most notification rows one database transaction stores: a batch with more (an event to a big organizer) is stored in several, in order, the first a quarter of this size, and pushes start when the first commits (at most 1048576)"`
	// What one record may cost (docs/security.md): checked before any row
	// or frame is built; past a bound the record is a dead letter.
	MaxDataBytes      int           `mapstructure:"max_data_bytes" default:"65536" desc:"largest data (JSON bytes, as stored) a record may carry; larger: dead letter too_large"`
	MaxRowBytes       int           `mapstructure:"max_row_bytes" default:"131072" desc:"largest notification one record may make: data, rendered content and actionUrl, actor and ids, plus 256 bytes; larger (a template's output included, which stops there): dead letter too_large"`
	MaxRowsPerRecord  int           `mapstructure:"max_rows_per_record" default:"100000" desc:"most notifications one record may make (its recipientIds, at most 10000, or the members of its organizer or merchant); more: dead letter too_many_recipients"`
	MaxBytesPerRecord int64         `mapstructure:"max_bytes_per_record" default:"67108864" desc:"most bytes of notifications one record may make in all (notifications × their size, as ingest.max_row_bytes counts it); more: dead letter too_large"`
	MaxClockSkew      time.Duration `mapstructure:"max_clock_skew" default:"1h" desc:"how far ahead of now a record's timestamp may be (at most 168h); further, or no timestamp (zero or negative: v0/v1 records): dead letter timestamp_out_of_range. The timestamp places the notification in its day's partition"`
}

// Members is the optional feed of membership changes.
type Members struct {
	Topic string `mapstructure:"topic" desc:"Kafka topic of membership changes ({\"scope\",\"scopeId\",\"op\",\"recipientIds\"}, keyed scope:scopeId) from the organization service; empty: no feed. Consumed by the group kafka.group_id + \"-members\", from the earliest offset when the group has none"`
	// Off by default: a notification records what happened while one was
	// a member; deleting that history is the product's decision.
	RevokeOnRemove bool `mapstructure:"revoke_on_remove" default:"false" desc:"a member removed from an organizer or merchant (API, members topic or CLI, remove or replace) loses that scope's notifications (organizerId or merchantId equal to the group's id) from its inbox, counts and devices (a removed change, reason revoked)"`
}

// Notifications keep the stored inbox over time.
type Notifications struct {
	// 90 days: the quarter an inbox is looked back on, and a bounded number
	// of day partitions (every inbox query visits each one).
	Retention Age `mapstructure:"retention" default:"90d" desc:"age after which notifications are removed, whole days at a time (Go duration or Nd, e.g. 90d); records older than this are skipped by ingest. 0 keeps them forever"`
	// An hour: "12 payments received" within a working session, and a
	// bounded look-back for each grouped row ingest stores.
	GroupWindow time.Duration `mapstructure:"group_window" default:"1h" desc:"how long notifications of one recipient with one groupKey collapse into one inbox item (count, latest actors; unread and unseen rise by one per group); a group that was read, archived or deleted starts a new item. 0: no grouping"`
}

// Cluster tunes how instances find each other.
type Cluster struct {
	Heartbeat time.Duration `mapstructure:"heartbeat" default:"5s" desc:"how often an instance records that it is alive"`
	DeadAfter time.Duration `mapstructure:"dead_after" default:"15s" desc:"an instance silent this long is removed with its clients (no phantom clients)"`
	// Rebalancing: after a restart the instance that came back holds no
	// client until some reconnect.
	RebalanceInterval time.Duration `mapstructure:"rebalance_interval" default:"10s" desc:"how often an instance holding more clients than the average, while another holds less than 0.8 times it, closes up to 5 % of its own with 1012 so they reconnect through the load balancer (they resume with ?since=, missing nothing); 0: never"`
}

// Shutdown bounds a graceful stop.
type Shutdown struct {
	Timeout time.Duration `mapstructure:"timeout" default:"25s" desc:"the whole graceful stop (consumer drain, HTTP, closing clients over websocket.close_window, relay, pool) ends within this; what is left is then closed at once. Keep it below systemd's TimeoutStopSec (30s)"`
}

// Debug exposes profiling for performance work.
type Debug struct {
	PprofAddr        string `mapstructure:"pprof_addr" desc:"listen address of net/http/pprof (e.g. 127.0.0.1:6060), bound before anything else starts; empty: off. A non-loopback address is refused unless debug.pprof_allow_public"`
	PprofAllowPublic bool   `mapstructure:"pprof_allow_public" default:"false" desc:"allow debug.pprof_addr on a non-loopback address (profiles expose memory contents and can stall the process)"`
}

// Log is the structured log on stderr.
type Log struct {
	Level  string `mapstructure:"level" default:"info" desc:"debug, info, warn or error"`
	Format string `mapstructure:"format" default:"text" desc:"text or json"`
}

// OTel exports traces.
type OTel struct {
	Endpoint string `mapstructure:"endpoint" desc:"OTLP/HTTP base URL of a trace collector (e.g. http://127.0.0.1:4318; spans are posted to /v1/traces). A Kafka record's or a REST request's W3C traceparent header continues into the spans of its consume, persist and push; log lines of a traced record carry trace_id and span_id. Empty: no tracing"`
}

// Client is how the CLI reaches a running server.
type Client struct {
	Server string `mapstructure:"server" env:"SIGNAL_SERVER" default:"http://127.0.0.1:8080" desc:"base URL of a serve instance (send, broadcast, clients, tail, status)"`
	APIKey string `mapstructure:"api_key" env:"SIGNAL_API_KEY" desc:"API key the CLI sends to the REST API" secret:"true"`
}

// DefaultEmbeddedPort is kafka.embedded_port's default.
const DefaultEmbeddedPort = 9092

// DefaultServer is client.server's default (a test keeps them equal).
const DefaultServer = "http://127.0.0.1:8080"

// DefaultDatabaseURL is database.url's default (the struct tag above; a test
// keeps them equal).
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/signal?sslmode=disable"
