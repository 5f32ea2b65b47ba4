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
	Database  Database                      `mapstructure:"database"`
	Kafka     Kafka                         `mapstructure:"kafka"`
	HTTP      HTTP                          `mapstructure:"http"`
	Auth      Auth                          `mapstructure:"auth"`
	WebSocket WebSocket                     `mapstructure:"websocket"`
	Ingest    Ingest                        `mapstructure:"ingest"`
	Members   Members                       `mapstructure:"members"`
	Cluster   Cluster                       `mapstructure:"cluster"`
	Debug     Debug                         `mapstructure:"debug"`
	Log       Log                           `mapstructure:"log"`
	Client    Client                        `mapstructure:"client"`
	Templates map[string]event.TemplateText `mapstructure:"templates" desc:"per-eventType templates: templates.<TYPE>.content and templates.<TYPE>.action_url (Go text/template over the message; keys are case-insensitive). Built in: PAYMENT_SUCCESS and a generic fallback." noenv:"true"`
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
	SessionTimeout time.Duration `mapstructure:"session_timeout" default:"45s" desc:"consumer group session timeout: a crashed instance's partitions move to the others after this long"`
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
}

// Auth holds the secrets of clients and callers.
type Auth struct {
	JWTSecret string   `mapstructure:"jwt_secret" env:"SIGNAL_AUTH_JWT_SECRET" desc:"HS256 secret of WebSocket and inbox tokens; serve needs it unless --dev" secret:"true"`
	APIKeys   []string `mapstructure:"api_keys" env:"SIGNAL_API_KEYS" desc:"REST API keys, comma-separated; serve needs one unless --dev" secret:"true"`
}

// WebSocket bounds what one client may cost.
type WebSocket struct {
	MaxMessageBytes int           `mapstructure:"max_message_bytes" default:"65536" desc:"largest inbound frame; larger closes the connection with 1009"`
	MaxRooms        int           `mapstructure:"max_rooms" default:"100" desc:"rooms one client may be in at once"`
	QueueLimit      int           `mapstructure:"queue_limit" default:"2048" desc:"frames waiting for a slow client before it is disconnected (close 1008)"`
	ReplayLimit     int           `mapstructure:"replay_limit" default:"500" desc:"most stored notifications one join with since replays"`
	CloseWindow     time.Duration `mapstructure:"close_window" default:"2s" desc:"at shutdown, clients are closed (1001) spread over this window"`
}

// Ingest tunes the Kafka-to-PostgreSQL path.
type Ingest struct {
	RepushWindow time.Duration `mapstructure:"repush_window" default:"5m" desc:"a redelivered record whose rows are younger than this is pushed again (same ids); older ones are not, so a replayed topic does not flood clients"`
	RetryMin     time.Duration `mapstructure:"retry_min" default:"100ms" desc:"first wait before retrying a batch after a transient failure"`
	RetryMax     time.Duration `mapstructure:"retry_max" default:"30s" desc:"longest wait between retries"`
	MaxRowsPerTx int           `mapstructure:"max_rows_per_tx" default:"8192" desc:"most notification rows one database transaction stores: a batch with more (an event to a big organizer) is stored in several, in order, the first a quarter of this size, and pushes start when the first commits (at most 1048576)"`
}

// Members is the optional feed of membership changes.
type Members struct {
	Topic string `mapstructure:"topic" desc:"Kafka topic of membership changes ({\"scope\",\"scopeId\",\"op\",\"recipientIds\"}, keyed scope:scopeId) from the organization service; empty: no feed. Consumed by the group kafka.group_id + \"-members\", from the earliest offset when the group has none"`
}

// Cluster tunes how instances find each other.
type Cluster struct {
	Heartbeat time.Duration `mapstructure:"heartbeat" default:"5s" desc:"how often an instance records that it is alive"`
	DeadAfter time.Duration `mapstructure:"dead_after" default:"15s" desc:"an instance silent this long is removed with its clients (no phantom clients)"`
}

// Debug exposes profiling for performance work.
type Debug struct {
	PprofAddr string `mapstructure:"pprof_addr" desc:"listen address of net/http/pprof (e.g. 127.0.0.1:6060); empty: off. Never expose it publicly"`
}

// Log is the structured log on stderr.
type Log struct {
	Level  string `mapstructure:"level" default:"info" desc:"debug, info, warn or error"`
	Format string `mapstructure:"format" default:"text" desc:"text or json"`
}

// Client is how the CLI reaches a running server.
type Client struct {
	Server string `mapstructure:"server" env:"SIGNAL_SERVER" default:"http://127.0.0.1:8080" desc:"base URL of a serve instance (send, broadcast, clients, tail, status)"`
	APIKey string `mapstructure:"api_key" env:"SIGNAL_API_KEY" desc:"API key the CLI sends to the REST API" secret:"true"`
}
