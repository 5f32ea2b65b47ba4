package cli

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signal-notify/signal/internal/client"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/store"
)

// completionTimeout bounds a live lookup: a shell must never hang on TAB.
const completionTimeout = 700 * time.Millisecond

type completeFunc = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective)

// withStore runs fn on the configured database, quietly giving nothing when
// it cannot be reached in time.
func withStore(g *globals, fn func(context.Context, *store.Store) []string) []string {
	cfg, err := g.load(nil)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	st, err := store.Open(ctx, databaseURL(cfg), 1)
	if err != nil {
		return nil
	}
	defer st.Close()
	return fn(ctx, st)
}

// completeRecipients offers recipient ids known to the database.
func completeRecipients(g *globals) completeFunc {
	return func(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		// --recipients takes a comma-separated list: complete its last item.
		done, last := "", prefix
		if i := strings.LastIndexByte(prefix, ','); i >= 0 {
			done, last = prefix[:i+1], prefix[i+1:]
		}
		ids := withStore(g, func(ctx context.Context, st *store.Store) []string {
			ids, _ := st.RecipientIDs(ctx, last, 100)
			return ids
		})
		for i := range ids {
			ids[i] = done + ids[i]
		}
		return ids, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeGroups offers organizer or merchant ids that have members.
func completeGroups(g *globals, scope string) completeFunc {
	return func(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		ids := withStore(g, func(ctx context.Context, st *store.Store) []string {
			ids, err := st.ScopeIDs(ctx, scope, "", 1000)
			if err != nil {
				return nil
			}
			var out []string
			for _, id := range ids {
				if strings.HasPrefix(id, prefix) {
					out = append(out, id)
				}
			}
			return out
		})
		return ids, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeRooms offers the rooms clients are in right now (from the
// server) and the notification rooms of known recipients (from the
// database), whichever answer in time.
func completeRooms(g *globals) completeFunc {
	return func(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		seen := map[string]bool{}
		var out []string
		add := func(room string) {
			if strings.HasPrefix(room, prefix) && !seen[room] {
				seen[room] = true
				out = append(out, room)
			}
		}
		for _, cl := range liveClients(g) {
			for _, r := range cl.Rooms {
				add(r)
			}
		}
		if rcptPrefix, ok := strings.CutPrefix(prefix, event.NotificationRoomPrefix); ok || strings.HasPrefix(event.NotificationRoomPrefix, prefix) {
			for _, id := range withStore(g, func(ctx context.Context, st *store.Store) []string {
				ids, _ := st.RecipientIDs(ctx, rcptPrefix, 100)
				return ids
			}) {
				add(event.NotificationRoom(id))
			}
		}
		sort.Strings(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// liveClients asks the configured server for its clients, quietly giving
// nothing when it does not answer in time.
func liveClients(g *globals) []client.ClientInfo {
	cfg, err := g.load(nil)
	if err != nil {
		return nil
	}
	c, err := g.apiClient(cfg, false)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	list, _ := c.Clients(ctx)
	return list
}

// completeClients offers the ids of connected clients, from the server.
func completeClients(g *globals) completeFunc {
	return func(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, cl := range liveClients(g) {
			if strings.HasPrefix(cl.ID, prefix) {
				out = append(out, cl.ID+"\t"+cl.Subject)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
