package cli

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/client"
	"github.com/signal-notify/signal/internal/hub"
)

// SendOptions are the inputs of send and broadcast.
type SendOptions struct {
	g      *globals
	Client string
	Room   string
	Topic  string
	Data   string
	flags  map[string]*pflag.Flag
}

func newCmdSend(g *globals) *cobra.Command {
	o := &SendOptions{g: g}
	cmd := &cobra.Command{
		Use:   "send --client ID | --room NAME --topic T --data JSON",
		Short: "Send a frame to one client or to one room, through the REST API",
		Long: `Send a frame {"topic":T,"room":…,"data":JSON} to one WebSocket client
(wherever it is connected) or to every member of a room, through the REST
API of a serve instance. --data is JSON inline, @file, or - for stdin.`,
		Example: `  signalctl send --room signal/notification/u1 --topic test/ping --data '{"hello":"world"}'
  signalctl send --client 3f0c…-…  --topic ops/reload --data @payload.json
  echo '{"n":1}' | signalctl send --room 'ops alerts/é' --topic t --data -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return sendRun(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.Client, "client", "", "client id (from the welcome frame or signalctl clients)")
	f.StringVar(&o.Room, "room", "", "room name, e.g. signal/notification/u1")
	f.StringVar(&o.Topic, "topic", "", "frame topic (required)")
	f.StringVar(&o.Data, "data", "null", "frame data: JSON, @file, or - for stdin")
	cmd.MarkFlagsMutuallyExclusive("client", "room")
	cmd.MarkFlagsOneRequired("client", "room")
	_ = cmd.MarkFlagRequired("topic")
	o.flags = addServerFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("client", completeClients(g))
	_ = cmd.RegisterFlagCompletionFunc("room", completeRooms(g))
	_ = cmd.RegisterFlagCompletionFunc("topic", cobra.NoFileCompletions)
	return cmd
}

func sendRun(ctx context.Context, o *SendOptions) error {
	if o.Room != "" {
		if err := hub.ValidateRoom(o.Room); err != nil {
			return usageErrorf("--room: %s", err.Message)
		}
	}
	data, err := readDataArg(o.Data, o.g.io.In)
	if err != nil {
		return err
	}
	c, err := o.g.api(o.flags)
	if err != nil {
		return err
	}
	if o.Room != "" {
		if err := c.SendRoom(ctx, o.Room, o.Topic, data); err != nil {
			return fmt.Errorf("send to room %q: %w", o.Room, err)
		}
		fmt.Fprintf(o.g.io.ErrOut, "Sent %s to room %s%s\n", o.Topic, o.Room, roomAudience(ctx, c, o.Room))
		return nil
	}
	if err := c.SendClient(ctx, o.Client, o.Topic, data); err != nil {
		return fmt.Errorf("send to client %s: %w", o.Client, err)
	}
	fmt.Fprintf(o.g.io.ErrOut, "Sent %s to client %s.\n", o.Topic, o.Client)
	return nil
}

func newCmdBroadcast(g *globals) *cobra.Command {
	o := &SendOptions{g: g}
	cmd := &cobra.Command{
		Use:   "broadcast --topic T --data JSON",
		Short: "Send a frame to every connected client, through the REST API",
		Long: `Send a frame {"topic":T,"data":JSON} to every WebSocket client of every
serve instance. --data is JSON inline, @file, or - for stdin.`,
		Example: `  signalctl broadcast --topic system/maintenance --data '{"at":"22:00"}'
  signalctl broadcast --topic system/reload --data @reload.json --server http://signal.internal:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readDataArg(o.Data, o.g.io.In)
			if err != nil {
				return err
			}
			c, err := o.g.api(o.flags)
			if err != nil {
				return err
			}
			if err := c.Broadcast(cmd.Context(), o.Topic, data); err != nil {
				return fmt.Errorf("broadcast: %w", err)
			}
			fmt.Fprintf(o.g.io.ErrOut, "Broadcast %s to every client%s\n", o.Topic, roomAudience(cmd.Context(), c, ""))
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Topic, "topic", "", "frame topic (required)")
	cmd.Flags().StringVar(&o.Data, "data", "null", "frame data: JSON, @file, or - for stdin")
	_ = cmd.MarkFlagRequired("topic")
	_ = cmd.RegisterFlagCompletionFunc("topic", cobra.NoFileCompletions)
	o.flags = addServerFlags(cmd)
	return cmd
}

// roomAudience ends the "Sent" message with how many clients were in the
// room (every client for ""), as the cluster's client list says right after
// the send: a send to an empty room succeeds, and reaches nobody.
func roomAudience(ctx context.Context, c *client.Client, room string) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	list, err := c.Clients(ctx)
	if err != nil {
		return "."
	}
	n := 0
	for _, cl := range list {
		if room == "" || slices.Contains(cl.Rooms, room) {
			n++
		}
	}
	switch {
	case n == 0 && room == "":
		return ", but no client is connected: nobody received it."
	case n == 0:
		return ", but no client is in it: nobody received it."
	case n == 1:
		return " (1 client)."
	}
	return fmt.Sprintf(" (%d clients).", n)
}
