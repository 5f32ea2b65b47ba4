package cli

import (
	"context"
	"os"

	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/client"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/relay"
	"github.com/signal-notify/signal/internal/store"
)

// memberPage is how many ids the members commands read at a time.
const memberPage = 1000

type memberCounts = client.MemberCounts

// memberService is what the members commands need, from the REST API of a
// server or from the database. Both end in the same store functions (the
// API's handlers call them too), so the two ways cannot drift apart.
type memberService interface {
	change(ctx context.Context, key event.ScopeKey, op string, ids []string) (memberCounts, error)
	members(ctx context.Context, key event.ScopeKey, cursor string) (client.Page, error)
	scopeIDs(ctx context.Context, scope, cursor string) (client.Page, error)
	close()
}

// openMembers goes through the REST API when a server is configured
// (--server, $SIGNAL_SERVER, or client.server in the config file) and
// --database-url is not given, and to the database otherwise.
func openMembers(ctx context.Context, g *globals, flags map[string]*pflag.Flag) (memberService, error) {
	cfg, err := g.load(flags)
	if err != nil {
		return nil, err
	}
	if serverConfigured(cfg, flags) {
		c, err := g.apiClient(cfg, true)
		if err != nil {
			return nil, err
		}
		return apiMembers{c}, nil
	}
	st, err := store.Open(ctx, databaseURL(cfg), 2)
	if err != nil {
		return nil, err
	}
	if cfg.Members.RevokeOnRemove {
		// The revoked notifications leave the devices on every instance,
		// relayed in the change's transaction.
		host, _ := os.Hostname()
		pub := relay.Publisher{Store: st, Origin: "signalctl-members-" + host}
		st.RevokeOnRemove(func(ctx context.Context, tx *store.Tx, pushes []event.Push) (func(bool), error) {
			return pub.Stage(ctx, tx, pushes)
		})
	}
	return dbMembers{st}, nil
}

func serverConfigured(cfg *config.Config, flags map[string]*pflag.Flag) bool {
	if f := flags["database.url"]; f != nil && f.Changed {
		return false
	}
	if f := flags["client.server"]; f != nil && f.Changed {
		return true
	}
	if os.Getenv("SIGNAL_SERVER") != "" {
		return true
	}
	for _, f := range config.Fields() {
		if f.Key == "client.server" {
			return cfg.Client.Server != f.Default
		}
	}
	return false
}

// apiMembers is the REST API.
type apiMembers struct{ c *client.Client }

func (a apiMembers) change(ctx context.Context, key event.ScopeKey, op string, ids []string) (memberCounts, error) {
	switch op {
	case event.OpAdd:
		return a.c.AddMembers(ctx, key.Scope, key.ID, ids)
	case event.OpRemove:
		return a.c.RemoveMembers(ctx, key.Scope, key.ID, ids)
	}
	return a.c.ReplaceMembers(ctx, key.Scope, key.ID, ids)
}

func (a apiMembers) members(ctx context.Context, key event.ScopeKey, cursor string) (client.Page, error) {
	return a.c.Members(ctx, key.Scope, key.ID, cursor, memberPage)
}

func (a apiMembers) scopeIDs(ctx context.Context, scope, cursor string) (client.Page, error) {
	return a.c.ScopeIDs(ctx, scope, cursor, memberPage)
}

func (apiMembers) close() {}

// dbMembers is the database; its cursor is the last id of the page.
type dbMembers struct{ st *store.Store }

func (d dbMembers) change(ctx context.Context, key event.ScopeKey, op string, ids []string) (memberCounts, error) {
	n, err := d.st.ChangeMembers(ctx, key, op, store.SliceIDs(ids))
	return memberCounts(n), err
}

func (d dbMembers) members(ctx context.Context, key event.ScopeKey, cursor string) (client.Page, error) {
	ids, err := d.st.ListMembers(ctx, key, cursor, memberPage)
	return idPage(ids), err
}

func (d dbMembers) scopeIDs(ctx context.Context, scope, cursor string) (client.Page, error) {
	ids, err := d.st.ScopeIDs(ctx, scope, cursor, memberPage)
	return idPage(ids), err
}

func (d dbMembers) close() { d.st.Close() }

// idPage is a page of up to memberPage ids: a full one may have a next.
func idPage(ids []string) client.Page {
	p := client.Page{Items: ids}
	if len(ids) == memberPage {
		last := ids[len(ids)-1]
		p.NextCursor = &last
	}
	return p
}
