package cli

import (
	"errors"
	"fmt"

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
	f.String("server", "", "base URL of a serve instance (client.server, $SIGNAL_SERVER; default http://127.0.0.1:8080)")
	f.String("api-key", "", "REST API key (client.api_key, $SIGNAL_API_KEY; default: the serve --dev key of this machine)")
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

// apiClient returns a REST client of cfg's server. Without a configured
// key it uses the one serve --dev generated on this machine.
func (g *globals) apiClient(cfg *config.Config, needKey bool) (*client.Client, error) {
	key := cfg.Client.APIKey
	if key == "" {
		if ds, _ := devstate.Load(); ds != nil {
			key = ds.APIKey
		}
	}
	if key == "" && needKey {
		return nil, errors.New("no API key: set SIGNAL_API_KEY or --api-key (or run serve --dev on this machine once)")
	}
	c, err := client.New(cfg.Client.Server, key)
	if err != nil {
		return nil, fmt.Errorf("client.server: %w", err)
	}
	return c, nil
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
