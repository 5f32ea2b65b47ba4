package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/devstate"
	"github.com/signal-notify/signal/internal/event"
)

// TokenOptions are token's inputs.
type TokenOptions struct {
	g     *globals
	Sub   string
	Rooms []string
	TTL   time.Duration
}

func newCmdToken(g *globals) *cobra.Command {
	o := &TokenOptions{g: g}
	cmd := &cobra.Command{
		Use:   "token --sub ID [--room PATTERN]... [--ttl D]",
		Short: "Mint a WebSocket JWT with the configured secret",
		Long: `Mint an HS256 JWT for the WebSocket endpoint and the inbox API, signed
with auth.jwt_secret (SIGNAL_AUTH_JWT_SECRET). Without a configured secret it
uses the one "serve --dev" generated in this clone (and says so when the
token is printed on a terminal; $(signalctl token …) stays quiet).

The holder is joined to signal/notification/<sub> and may join the rooms of
--room. Patterns match whole path segments: "ops/*" allows ops/a and ops/a/b
(not ops, nor opsx), "*" alone allows every room, and any other pattern only
the room it names. A pattern that opens other recipients' notification rooms
("*", "signal/*", "signal/notification/*") is minted with a warning.

The token carries auth.audience and auth.issuer when they are configured,
and --ttl may not exceed auth.max_token_ttl: the server would refuse it.`,
		Example: `  signalctl token --sub u1
  signalctl token --sub qa-bot --room 'signal/notification/*' --ttl 1h
  websocat "ws://127.0.0.1:8080/socket/websocket?token=$(signalctl token --sub u1)"`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return tokenRun(o) },
	}
	cmd.Flags().StringVar(&o.Sub, "sub", "", "recipient id the token is for (required)")
	cmd.Flags().StringArrayVar(&o.Rooms, "room", nil, "room (or pattern ending in /*) the holder may join; repeatable")
	cmd.Flags().DurationVar(&o.TTL, "ttl", 24*time.Hour, "lifetime of the token")
	_ = cmd.MarkFlagRequired("sub")
	_ = cmd.RegisterFlagCompletionFunc("sub", completeRecipients(g))
	_ = cmd.RegisterFlagCompletionFunc("room", completeRooms(g))
	_ = cmd.RegisterFlagCompletionFunc("ttl", fixedValues("15m", "1h", "24h", "168h"))
	return cmd
}

func tokenRun(o *TokenOptions) error {
	if err := checkID("--sub", o.Sub); err != nil {
		return err // a token with such a sub would be refused by serve
	}
	if o.TTL <= 0 {
		return usageErrorf("--ttl must be positive, got %s", o.TTL)
	}
	cfg, err := o.g.load(nil)
	if err != nil {
		return err
	}
	if m := cfg.Auth.MaxTokenTTL; m > 0 && o.TTL > m {
		return usageErrorf("--ttl %s is longer than auth.max_token_ttl (%s): serve would refuse the token", o.TTL, m)
	}
	secret := cfg.Auth.JWTSecret
	if secret == "" {
		if ds, _ := devstate.Load(); ds != nil {
			secret = ds.JWTSecret
			if o.g.io.OutTTY {
				// Said only to a person: $(signalctl token …) stays quiet.
				fmt.Fprintf(o.g.io.ErrOut, "Using the development secret from %s.\n", devstate.Path())
			}
		}
	}
	tok, err := auth.SignToken(secret, auth.SignOptions{Sub: o.Sub, Rooms: o.Rooms, TTL: o.TTL, Audience: cfg.Auth.Audience, Issuer: cfg.Auth.Issuer})
	if err != nil {
		return err
	}
	for _, p := range o.Rooms {
		switch {
		case auth.PatternReachesOtherRecipients(p):
			fmt.Fprintf(o.g.io.ErrOut, "Warning: --room %q opens the notification rooms of other recipients, not only %s: the holder can read their notifications.\n", p, event.NotificationRoom(o.Sub))
		case strings.Contains(p, "*") && !auth.PatternIsWildcard(p):
			fmt.Fprintf(o.g.io.ErrOut, "Warning: --room %q allows only the room of that exact name: * is a wildcard only as a whole last segment (a/b/*).\n", p)
		}
	}
	fmt.Fprintln(o.g.io.Out, tok)
	return nil
}
