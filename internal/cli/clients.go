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
	if o.Output == FormatJSON {
		return writeJSON(o.g.io.Out, list)
	}
	rows := make([][]string, 0, len(list))
	for _, cl := range list {
		rows = append(rows, []string{cl.ID, cl.Subject, strings.Join(cl.Rooms, " "), cl.Instance,
			event.FormatTime(cl.ConnectedSince), time.Since(cl.ConnectedSince).Round(time.Second).String()})
	}
	printTable(o.g.io, []string{"CLIENT", "SUBJECT", "ROOMS", "INSTANCE", "CONNECTED SINCE", "FOR"}, rows)
	fmt.Fprintf(o.g.io.ErrOut, "%d client(s).\n", len(list))
	return nil
}
