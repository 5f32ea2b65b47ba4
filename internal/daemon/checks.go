package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"unicode/utf8"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/store"
)

// Shortest secrets serve accepts outside --dev (contract section 8): a
// shorter HS256 secret or API key can be guessed offline or online.
const (
	MinJWTSecretBytes = 32
	MinAPIKeyChars    = 24
)

// checkServeConfig names the first missing or unsafe setting serve cannot
// do without.
func checkServeConfig(cfg *config.Config, dev bool) error {
	a := cfg.Auth
	switch {
	case len(cfg.Kafka.Brokers) == 0:
		return errors.New("no Kafka brokers: set kafka.brokers or SIGNAL_KAFKA_BROKERS (\"embedded\" for the in-process development broker), or run serve --dev")
	case a.JWTSecret == "" && a.PublicKeyFile == "" && a.JWKSURL == "":
		return errors.New("no JWT secret: set auth.jwt_secret or SIGNAL_AUTH_JWT_SECRET (or auth.public_key_file or auth.jwks_url for RS256/ES256/EdDSA tokens), or run serve --dev")
	case len(a.APIKeys) == 0:
		return errors.New("no API key: set auth.api_keys or SIGNAL_API_KEYS, or run serve --dev")
	case cfg.Database.URL == "":
		return errors.New("no database: set database.url or SIGNAL_DATABASE_URL")
	}
	if dev {
		return nil
	}
	if cfg.UsesEmbeddedBroker() {
		return errors.New("kafka.brokers is \"embedded\": the in-process broker keeps records in memory and lets anyone on this host produce without credentials. It is for development only: run serve --dev, or set kafka.brokers to your Kafka cluster")
	}
	if n := len(a.JWTSecret); n > 0 && n < MinJWTSecretBytes {
		return fmt.Errorf("auth.jwt_secret is %d bytes long: outside --dev it must be at least %d (make one with: openssl rand -base64 32)", n, MinJWTSecretBytes)
	}
	for i, k := range a.APIKeys {
		if n := utf8.RuneCountInString(auth.KeyOf(k)); n < MinAPIKeyChars {
			return fmt.Errorf("auth.api_keys: key %d of %d is %d characters long: outside --dev each must be at least %d (make one with: openssl rand -base64 24)", i+1, len(a.APIKeys), n, MinAPIKeyChars)
		}
	}
	return nil
}

// warnIfSuperuser says so when serve connects as a PostgreSQL superuser:
// a leaked database.url would then give the whole server away.
func warnIfSuperuser(ctx context.Context, st *store.Store, log *slog.Logger) {
	var super string
	if err := st.Pool.QueryRow(ctx, "SELECT current_setting('is_superuser')").Scan(&super); err != nil {
		log.Debug("cannot tell whether the database role is a superuser", "err", err)
		return
	}
	if super == "on" {
		log.Warn("connected to PostgreSQL as a superuser: give serve a role that owns the signal schema and nothing else (docs/security.md)")
	}
}

// checkPprofAddr refuses a pprof address that is not loopback unless
// debug.pprof_allow_public says otherwise: profiles expose memory contents
// and a CPU profile or trace can stall the process.
func checkPprofAddr(d config.Debug) error {
	host, _, err := net.SplitHostPort(d.PprofAddr)
	if err != nil {
		return fmt.Errorf("debug.pprof_addr %q: %w", d.PprofAddr, err)
	}
	if d.PprofAllowPublic || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("debug.pprof_addr %s is not a loopback address: profiles expose memory contents and can stall the process. Bind it to 127.0.0.1 (and reach it through SSH), or set debug.pprof_allow_public: true", d.PprofAddr)
}

// isLoopback is true for localhost and loopback IPs; an empty host (every
// interface) or another name is not.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
