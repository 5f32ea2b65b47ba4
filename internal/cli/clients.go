package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/event"
)

// ClientsOptions are the inputs of clients.
type ClientsOptions struct {
	g      *globals
	Output string
	flags  map[string]*pflag.Flag
}

func newCmdClients(g *globals) *cobra.Command {
	o := &ClientsOptions{g: g}
	cmd := &cobra.Command{
		Use:     "clients",
		Short:   "List the connected WebSocket clients of every instance",
		Example: "  signalctl clients\n  signalctl clients -o json | jq '.[] | select(.subject == \"u1\")'",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return clientsRun(cmd.Context(), o) },
	}
	addOutputFlag(cmd, &o.Output)
	o.flags = addServerFlags(cmd)
	return cmd
}

func clientsRun(ctx context.Context, o *ClientsOptions) error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	c, err := o.g.api(o.flags)
	if err != nil {
		return err
	}
	list, err := c.Clients(ctx)
	if err != nil {
		return fmt.Errorf("list clients: %w", err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ConnectedSince.Before(list[j].ConnectedSince) })
	for i := range list {
		if list[i].ClientID == "" { // a server of an earlier release
			list[i].ClientID = list[i].ID
		}
	}
	if o.Output == FormatJSON {
		views := make([]clientView, len(list))
		for i, cl := range list {
			views[i] = clientView{ClientID: cl.ClientID, ID: cl.ClientID, Subject: cl.Subject, Rooms: cl.Rooms,
				ConnectedSince: event.FormatTime(cl.ConnectedSince), Instance: cl.Instance}
		}
		return writeJSON(o.g.io.Out, views)
	}
	rows := make([][]string, 0, len(list))
	now := time.Now()
	for _, cl := range list {
		rows = append(rows, []string{cl.ClientID, cl.Subject, strings.Join(cl.Rooms, " "), cl.Instance,
			shortTime(cl.ConnectedSince, now), now.Sub(cl.ConnectedSince).Round(time.Second).String()})
	}
	printTable(o.g.io, []string{"CLIENT", "SUBJECT", "ROOMS", "INSTANCE", "SINCE", "FOR"}, rows, 0)
	fmt.Fprintf(o.g.io.ErrOut, "%d client(s).\n", len(list))
	return nil
}

// clientView is a client in -o json, as the REST API lists it: clientId
// (id, its older name, kept for scripts: deprecated), times in milliseconds.
type clientView struct {
	ClientID       string   `json:"clientId"`
	ID             string   `json:"id"`
	Subject        string   `json:"subject"`
	Rooms          []string `json:"rooms"`
	ConnectedSince string   `json:"connectedSince"`
	Instance       string   `json:"instance,omitempty"`
}

// shortTime is t in local time: the clock alone today, the date too before.
// (-o json has the full RFC 3339 time.)
func shortTime(t, now time.Time) string {
	t = t.Local()
	if y, m, d := t.Date(); now.Local().Year() == y && now.Local().Month() == m && now.Local().Day() == d {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}
