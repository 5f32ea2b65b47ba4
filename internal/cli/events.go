package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/client"
)

// EventsOptions are the inputs of events retract and events update: a
// producer's event (its eventId) and, for update, what replaces the
// content, actionUrl and data of its notifications.
type EventsOptions struct {
	g         *globals
	Content   string
	ActionURL string
	Data      string
	Output    string
	flags     map[string]*pflag.Flag
}

// EventChange is the answer of events retract and update (-o json).
type EventChange struct {
	EventID string `json:"eventId"`
	Removed *int   `json:"removed,omitempty"`
	Updated *int   `json:"updated,omitempty"`
}

func newCmdEvents(g *globals) *cobra.Command {
	o := &EventsOptions{g: g}
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Retract or update the notifications made from a producer's event",
		Long: `A message with an eventId (produce/notify --event-id) can be taken back or
corrected later for every recipient at once, through the REST API (an API key
with the notify scope): retract removes its notifications from every inbox and
device (DELETE /events/{eventId}); update replaces their content, actionUrl or
data in place (PATCH /events/{eventId}). Both are idempotent: run again, they
change nothing more.`,
		Example: `  signalctl events retract pay-42
  signalctl events update pay-42 --content "Payment of 12.00 EUR refunded"
  signalctl events update pay-42 --data '{"payment":{"subject":"Gold ticket","status":"refunded"}}' -o json`,
	}
	pf := cmd.PersistentFlags()
	pf.String("server", "", "base URL of a serve instance (client.server, $SIGNAL_SERVER; default http://127.0.0.1:8080, or where this clone's serve --dev listens)")
	pf.String("api-key", "", "REST API key with the notify scope (client.api_key, $SIGNAL_API_KEY; default: the key of this clone's serve --dev, sent to it only)")
	pf.StringVarP(&o.Output, "output", "o", FormatTable, "output format: table (a sentence) or json")
	_ = cmd.RegisterFlagCompletionFunc("server", fixedValues("http://127.0.0.1:8080"))
	_ = cmd.RegisterFlagCompletionFunc("api-key", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("output", fixedValues(outputFormats...))
	o.flags = map[string]*pflag.Flag{"client.server": pf.Lookup("server"), "client.api_key": pf.Lookup("api-key")}

	retract := &cobra.Command{
		Use: "retract EVENT_ID", Short: "Remove every notification made from the event",
		Example: "  signalctl events retract pay-42", Args: cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return eventsRetractRun(cmd.Context(), o, args[0])
		},
	}
	update := &cobra.Command{
		Use: "update EVENT_ID [--content TEXT] [--action-url URL] [--data JSON]", Short: "Replace the content, actionUrl or data of the event's notifications",
		Example: `  signalctl events update pay-42 --content "Payment refunded" --action-url /payments/p-42`,
		Args:    cobra.ExactArgs(1), ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return eventsUpdateRun(cmd.Context(), o, args[0], o.patch(cmd))
		},
	}
	f := update.Flags()
	f.StringVar(&o.Content, "content", "", "the notifications' new content")
	f.StringVar(&o.ActionURL, "action-url", "", "their new actionUrl")
	f.StringVar(&o.Data, "data", "", "their new data: a JSON object, @file, or - for stdin")
	for _, name := range []string{"content", "action-url", "data"} {
		_ = update.RegisterFlagCompletionFunc(name, cobra.NoFileCompletions)
	}
	cmd.AddCommand(retract, update)
	return cmd
}

// patchFlags is which of update's flags were given.
type patchFlags struct{ content, actionURL, data bool }

func (o *EventsOptions) patch(cmd *cobra.Command) patchFlags {
	f := cmd.Flags()
	return patchFlags{f.Changed("content"), f.Changed("action-url"), f.Changed("data")}
}

func eventsRetractRun(ctx context.Context, o *EventsOptions, eventID string) error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	c, err := o.g.api(o.flags)
	if err != nil {
		return err
	}
	n, err := c.RetractEvent(ctx, eventID)
	if err != nil {
		return fmt.Errorf("retract event %s: %w", eventID, err)
	}
	if o.Output == FormatJSON {
		return writeJSON(o.g.io.Out, EventChange{EventID: eventID, Removed: &n})
	}
	fmt.Fprintf(o.g.io.Out, "Removed %d notification(s) made from event %s.\n", n, eventID)
	return nil
}

func eventsUpdateRun(ctx context.Context, o *EventsOptions, eventID string, given patchFlags) error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	if !given.content && !given.actionURL && !given.data {
		return usageErrorf("nothing to update: give --content, --action-url or --data")
	}
	var p client.EventPatch
	if given.content {
		p.Content = &o.Content
	}
	if given.actionURL {
		p.ActionURL = &o.ActionURL
	}
	if given.data {
		data, err := readDataArg(o.Data, o.g.io.In)
		if err != nil {
			return err
		}
		p.Data = data
	}
	c, err := o.g.api(o.flags)
	if err != nil {
		return err
	}
	n, err := c.UpdateEvent(ctx, eventID, p)
	if err != nil {
		return fmt.Errorf("update event %s: %w", eventID, err)
	}
	if o.Output == FormatJSON {
		return writeJSON(o.g.io.Out, EventChange{EventID: eventID, Updated: &n})
	}
	fmt.Fprintf(o.g.io.Out, "Updated %d notification(s) made from event %s.\n", n, eventID)
	return nil
}
