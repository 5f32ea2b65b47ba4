package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/client"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/devstate"
)

// addServerFlags adds --server and --api-key, bound to client.server and
// client.api_key, and returns the bindings.
func addServerFlags(cmd *cobra.Command) map[string]*pflag.Flag {
	f := cmd.Flags()
	f.String("server", "", "base URL of a serve instance (client.server, $SIGNAL_SERVER; default http://127.0.0.1:8080, or where this clone's serve --dev listens)")
	f.String("api-key", "", "REST API key (client.api_key, $SIGNAL_API_KEY; default: the key of this clone's serve --dev, sent to it only)")
	_ = cmd.RegisterFlagCompletionFunc("server", fixedValues("http://127.0.0.1:8080"))
	_ = cmd.RegisterFlagCompletionFunc("api-key", cobra.NoFileCompletions)
	return map[string]*pflag.Flag{"client.server": f.Lookup("server"), "client.api_key": f.Lookup("api-key")}
}

// api loads the configuration with flags and returns a REST client of its
// server, with an API key.
func (g *globals) api(flags map[string]*pflag.Flag) (*client.Client, error) {
	cfg, err := g.load(flags)
	if err != nil {
		return nil, err
	}
	return g.apiClient(cfg, true)
}

// apiClient returns a REST client of cfg's server (serverURL). Without a
// configured key it uses the one serve --dev generated, but only for a
// serve --dev of this clone: the development key is not sent elsewhere.
func (g *globals) apiClient(cfg *config.Config, needKey bool) (*client.Client, error) {
	server := serverURL(cfg)
	key, from := cfg.Client.APIKey, ""
	if key == "" {
		ds, _ := devstate.Load()
		switch {
		case ds.Known(server):
			key, from = ds.APIKey, "the development API key of serve --dev (in "+devstate.Path()+")"
		case needKey && ds != nil && len(ds.Servers) > 0:
			return nil, fmt.Errorf("no API key for %s: set SIGNAL_API_KEY or --api-key (the development key goes only to this clone's serve --dev: %s)",
				server, strings.Join(ds.Servers, ", "))
		}
	}
	if key == "" && needKey {
		return nil, errors.New("no API key: set SIGNAL_API_KEY or --api-key (or run serve --dev in this clone once)")
	}
	c, err := client.New(server, key)
	if err != nil {
		return nil, fmt.Errorf("client.server: %w", err)
	}
	c.KeyFrom = from
	return c, nil
}

// serverURL is client.server, or, while it is left at its default, the
// serve --dev of this clone that runs the embedded broker (make run's),
// wherever it listens.
func serverURL(cfg *config.Config) string {
	if cfg.Client.Server == config.DefaultServer {
		if ds, _ := devstate.Load(); ds != nil && ds.Server != "" {
			return ds.Server
		}
	}
	return cfg.Client.Server
}

// devSecret is the JWT secret to mint tokens for server with: auth.jwt_secret,
// or the development one for a serve --dev of this clone.
func devSecret(cfg *config.Config, server string) string {
	if cfg.Auth.JWTSecret != "" {
		return cfg.Auth.JWTSecret
	}
	if ds, _ := devstate.Load(); ds.Known(server) {
		return ds.JWTSecret
	}
	return ""
}

func merge(maps ...map[string]*pflag.Flag) map[string]*pflag.Flag {
	out := map[string]*pflag.Flag{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// devBroker is the embedded broker produce uses without kafka.brokers: the
// one this clone's serve --dev runs, or 127.0.0.1 at kafka.embedded_port.
func devBroker(cfg *config.Config) string {
	def := "127.0.0.1:" + strconv.Itoa(cfg.Kafka.EmbeddedPort)
	if cfg.Kafka.EmbeddedPort == config.DefaultEmbeddedPort {
		if ds, _ := devstate.Load(); ds != nil && ds.Brokers != "" {
			return ds.Brokers
		}
	}
	return def
}
