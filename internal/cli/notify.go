package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/event"
)

// NotifyOptions are notify's inputs: the message (from flags, as produce
// builds it, or a file) and the request's Idempotency-Key.
type NotifyOptions struct {
	g       *globals
	Message MessageFlags
	File    string
	Key     string
	Output  string
	flags   map[string]*pflag.Flag
}

func newCmdNotify(g *globals) *cobra.Command {
	o := &NotifyOptions{g: g}
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Create notifications through the REST API (POST /notifications), without Kafka",
		Long: `Build a TActivityNotificationMessage from flags, or read one from --file
(- for stdin), and create its notifications through POST /notifications of a
serve instance (an API key with the notify scope): the same path as a Kafka
record, and the same --key never makes a second notification. Without --key
a new one is made and printed, so a failed call can be repeated safely.`,
		Example: `  signalctl notify --recipients u1,u2 --data '{"payment":{"subject":"Gold ticket","id":"p-42"}}'
  signalctl notify --scope org --organizer org-1 --event-id pay-42 --expires-at 2026-12-31T00:00:00Z
  signalctl notify --file message.json --key payment-p-42 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.File != "" && o.Message.given(cmd) {
				return usageErrorf("--file and the message flags (--scope, --recipients, --data, …) do not mix")
			}
			return notifyRun(cmd.Context(), o)
		},
	}
	addMessageFlags(cmd, g, &o.Message, `{}`)
	f := cmd.Flags()
	f.StringVar(&o.File, "file", "", "read the message from a file, - for stdin (instead of the message flags)")
	f.StringVar(&o.Key, "key", "", "Idempotency-Key (default: a new one, printed)")
	addOutputFlag(cmd, &o.Output)
	o.flags = addServerFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("key", cobra.NoFileCompletions)
	_ = cmd.MarkFlagFilename("file", "json")
	return cmd
}

// notified is notify's answer (-o json).
type notified struct {
	Key string   `json:"idempotencyKey"`
	IDs []string `json:"ids"`
}

func notifyRun(ctx context.Context, o *NotifyOptions) error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	msg, err := o.message()
	if err != nil {
		return err
	}
	if _, err := event.Decode(msg); err != nil {
		return usageErrorf("the message would be refused: %v", err)
	}
	if o.Key == "" {
		o.Key = uuid.NewString()
	}
	c, err := o.g.api(o.flags)
	if err != nil {
		return err
	}
	ids, err := c.CreateNotifications(ctx, o.Key, msg)
	if err != nil {
		return fmt.Errorf("create notifications (Idempotency-Key %s): %w", o.Key, err)
	}
	if o.Output == FormatJSON {
		return writeJSON(o.g.io.Out, notified{Key: o.Key, IDs: ids})
	}
	for _, id := range ids {
		fmt.Fprintln(o.g.io.Out, id)
	}
	fmt.Fprintf(o.g.io.ErrOut, "Created %d notification(s) (Idempotency-Key %s).\n", len(ids), o.Key)
	return nil
}

// message is the message to send: --file's, or one built from the flags.
func (o *NotifyOptions) message() (json.RawMessage, error) {
	if o.File != "" {
		return o.fileMessage()
	}
	m, err := o.Message.build(o.g.io.In, time.Now())
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func (o *NotifyOptions) fileMessage() (json.RawMessage, error) {
	var b []byte
	var err error
	if o.File == "-" {
		b, err = io.ReadAll(o.g.io.In)
	} else {
		b, err = os.ReadFile(o.File)
	}
	if err != nil {
		return nil, fmt.Errorf("--file: %w", err)
	}
	if !json.Valid(b) {
		return nil, usageErrorf("%s is not one JSON message", o.File)
	}
	return b, nil
}
