package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/deadletter"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/ingest"
	"github.com/signal-notify/signal/internal/relay"
	"github.com/signal-notify/signal/internal/store"
)

// DeadLettersOptions are the inputs of the deadletters commands.
type DeadLettersOptions struct {
	g        *globals
	IDs      []int64
	All      bool
	Reason   string
	Replayed bool
	Before   string
	Limit    int
	Yes      bool
	Output   string
	flags    map[string]*pflag.Flag
}

var deadLetterReasons = []string{
	event.ReasonMalformedJSON, event.ReasonMissingField, event.ReasonInvalidField, event.ReasonInvalidScope,
	event.ReasonTooManyRecipients, event.ReasonNoRecipients, event.ReasonDBRejected,
}

func newCmdDeadLetters(g *globals) *cobra.Command {
	o := &DeadLettersOptions{g: g}
	cmd := &cobra.Command{
		Use:     "deadletters",
		Aliases: []string{"dlq"},
		Short:   "List, replay and purge records that could not become notifications",
		Long: `A record that cannot become notifications (not JSON, a missing field, a bad
scope, an org or merchant without members, …) is kept whole as a dead letter —
key, value, headers, topic, partition, offset, reason and time — and
consumption goes on. Nothing is dropped silently.

After fixing the cause (adding members for no_recipients, say), "replay" puts
the dead letters through the same pipeline again: the notifications are stored
(with the ids the original record would have had) and pushed to the clients
connected to any instance. Records that still fail stay dead letters with
their new reason.`,
		Example: `  signalctl deadletters list
  signalctl deadletters list --reason no_recipients -o json
  signalctl members add --org org-9 u1 u2 && signalctl deadletters replay --all --reason no_recipients
  signalctl deadletters replay --id 42 --id 43
  signalctl deadletters purge --before 720h --yes`,
	}
	pf := cmd.PersistentFlags()
	pf.String("database-url", "", "PostgreSQL URL (database.url)")
	o.flags = map[string]*pflag.Flag{"database.url": pf.Lookup("database-url")}

	list := &cobra.Command{
		Use: "list", Short: "List dead letters (waiting ones; --replayed for all)", Args: cobra.NoArgs,
		Example: "  signalctl deadletters list\n  signalctl deadletters list --reason malformed_json -o json",
		RunE:    func(cmd *cobra.Command, _ []string) error { return deadLettersList(cmd.Context(), o) },
	}
	list.Flags().StringVar(&o.Reason, "reason", "", "only this reason")
	list.Flags().BoolVar(&o.Replayed, "replayed", false, "include dead letters already replayed")
	list.Flags().IntVar(&o.Limit, "limit", 1000, "most dead letters to list")
	addOutputFlag(list, &o.Output)

	replay := &cobra.Command{
		Use: "replay --id ID... | --all [--reason R] | --reason R", Short: "Put dead letters through the pipeline again", Args: cobra.NoArgs,
		Long: `Put dead letters through the pipeline again: the ones given with --id, every
waiting one with --all, or every waiting one of a reason with --reason.

The dead letters waiting when the replay starts are handled page by page (500
at a time, in id order), so memory stays flat whatever their number. Ctrl-C
stops after the page in hand and exits 130; running the same command again
goes on where it stopped, and nothing is stored twice.`,
		Example: "  signalctl deadletters replay --all --reason no_recipients\n  signalctl deadletters replay --id 42",
		RunE:    func(cmd *cobra.Command, _ []string) error { return deadLettersReplay(cmd.Context(), o) },
	}
	replay.Flags().Int64SliceVar(&o.IDs, "id", nil, "dead letter id (repeatable)")
	replay.Flags().BoolVar(&o.All, "all", false, "every waiting dead letter (with --reason: of that reason)")
	replay.Flags().StringVar(&o.Reason, "reason", "", "every waiting dead letter of this reason (alone or with --all)")
	replay.MarkFlagsMutuallyExclusive("id", "all")
	replay.MarkFlagsMutuallyExclusive("id", "reason")
	replay.MarkFlagsOneRequired("id", "all", "reason")
	addOutputFlag(replay, &o.Output)

	purge := &cobra.Command{
		Use: "purge --before T", Short: "Delete dead letters created before T", Args: cobra.NoArgs,
		Long: `Delete dead letters created before T: an RFC 3339 time, or a duration meaning
"older than" (720h = 30 days). Asks for confirmation on a terminal unless --yes.`,
		Example: "  signalctl deadletters purge --before 720h\n  signalctl deadletters purge --before 2026-11-01T00:00:00Z --reason malformed_json --yes",
		RunE:    func(cmd *cobra.Command, _ []string) error { return deadLettersPurge(cmd.Context(), o) },
	}
	purge.Flags().StringVar(&o.Before, "before", "", "RFC 3339 time, or a duration ago such as 720h (required)")
	purge.Flags().StringVar(&o.Reason, "reason", "", "only this reason")
	purge.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	_ = purge.MarkFlagRequired("before")
	for _, c := range []*cobra.Command{list, replay, purge} {
		_ = c.RegisterFlagCompletionFunc("reason", fixedValues(deadLetterReasons...))
	}
	_ = purge.RegisterFlagCompletionFunc("before", fixedValues("24h", "168h", "720h"))
	cmd.AddCommand(list, replay, purge)
	return cmd
}

func (o *DeadLettersOptions) open(ctx context.Context) (*store.Store, error) {
	cfg, err := o.g.load(o.flags)
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, databaseURL(cfg), 4)
}

// deadLetterView is a dead letter for people and scripts: the value as text
// when it is text, base64 otherwise, and the value itself as JSON when it is
// JSON (so jq reads into it: .[0].valueJson.eventType).
type deadLetterView struct {
	ID         int64           `json:"id"`
	Topic      string          `json:"topic"`
	Partition  int32           `json:"partition"`
	Offset     int64           `json:"offset"`
	Timestamp  time.Time       `json:"timestamp"`
	Reason     string          `json:"reason"`
	Detail     string          `json:"detail"`
	Key        *string         `json:"key"`
	Value      string          `json:"value"`
	ValueBytes []byte          `json:"valueBase64,omitempty"`
	ValueJSON  json.RawMessage `json:"valueJson,omitempty"`
	Headers    []event.Header  `json:"headers"`
	CreatedAt  time.Time       `json:"createdAt"`
	ReplayedAt *time.Time      `json:"replayedAt"`
}

func viewOf(d *event.DeadLetter) deadLetterView {
	v := deadLetterView{ID: d.ID, Topic: d.Source.Topic, Partition: d.Source.Partition, Offset: d.Source.Offset,
		Timestamp: d.Source.Timestamp.UTC(), Reason: d.Reason, Detail: d.Detail, Headers: d.Headers,
		CreatedAt: d.CreatedAt.UTC(), ReplayedAt: d.ReplayedAt}
	if v.Headers == nil {
		v.Headers = []event.Header{}
	}
	if d.Key != nil {
		k := string(d.Key)
		v.Key = &k
	}
	if utf8.Valid(d.Value) {
		v.Value = string(d.Value)
		if json.Valid(d.Value) {
			v.ValueJSON = json.RawMessage(d.Value)
		}
	} else {
		v.ValueBytes = d.Value
	}
	return v
}

func deadLettersList(ctx context.Context, o *DeadLettersOptions) error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	st, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.ListDeadLetters(ctx, store.DeadLetterFilter{Reason: o.Reason, Replayed: o.Replayed, Limit: o.Limit})
	if err != nil {
		return err
	}
	views := make([]deadLetterView, len(list))
	for i, d := range list {
		views[i] = viewOf(d)
	}
	if o.Output == FormatJSON {
		return writeJSON(o.g.io.Out, views)
	}
	rows := make([][]string, 0, len(views))
	for _, v := range views {
		where := fmt.Sprintf("%s[%d]@%d", v.Topic, v.Partition, v.Offset)
		value := v.Value
		if v.ValueBytes != nil {
			value = fmt.Sprintf("(%d bytes, not text)", len(v.ValueBytes))
		}
		rows = append(rows, []string{strconv.FormatInt(v.ID, 10), v.Reason, fitText(o.g.io, v.Detail, 60), where,
			event.FormatTime(v.CreatedAt), fitText(o.g.io, strings.Join(strings.Fields(value), " "), 40)})
	}
	printTable(o.g.io, []string{"ID", "REASON", "DETAIL", "RECORD", "CREATED", "VALUE"}, rows)
	fmt.Fprintf(o.g.io.ErrOut, "%d dead letter(s).\n", len(views))
	return nil
}

func deadLettersReplay(ctx context.Context, o *DeadLettersOptions) error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	cfg, err := o.g.load(o.flags)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, databaseURL(cfg), 4)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return err
	}
	renderer, err := event.NewRenderer(cfg.Templates)
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	host, _ := os.Hostname()
	push := deadletter.Pusher{Publisher: relay.Publisher{Store: st, Origin: "signalctl-replay-" + host}}
	ing := ingest.New(ingest.Options{Store: st, Renderer: renderer, Pusher: push, RepushWindow: cfg.Ingest.RepushWindow,
		MaxRowsPerTx: cfg.Ingest.MaxRowsPerTx, Retention: cfg.Notifications.Retention.Duration(), Limits: ingest.LimitsOf(cfg.Ingest),
		Logger: discardLogger()})
	feed := ingest.NewMemberFeed(st, nil, discardLogger())

	var bar *progress
	rp := &deadletter.Replayer{Store: st, Ingestor: ing, Members: feed, MembersTopic: cfg.Members.Topic, Progress: func(r *deadletter.Result) {
		if bar == nil {
			bar = newProgress(o.g.io, r.Selected, "replaying")
		}
		bar.Set(r.Done())
	}}
	res, err := rp.Replay(ctx, deadletter.Selection{IDs: o.IDs, Reason: o.Reason})
	if bar != nil {
		bar.Finish()
	}
	var nw *deadletter.NotWaitingError
	if errors.As(err, &nw) {
		return fmt.Errorf("%w (see deadletters list --replayed)", err)
	}
	if err != nil && res.Done() == 0 {
		return err
	}
	if o.Output == FormatJSON {
		if werr := writeJSON(o.g.io.Out, res); werr != nil {
			return werr
		}
	} else {
		fmt.Fprintf(o.g.io.Out, "replayed %d dead letter(s) into %d notification(s); %d still failing\n", len(res.Replayed), res.Notifications, len(res.StillDead))
		reasons := make([]string, 0, len(res.Reasons))
		for r := range res.Reasons {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		for _, r := range reasons {
			fmt.Fprintf(o.g.io.Out, "  %s: %d\n", r, res.Reasons[r])
		}
	}
	if err != nil {
		return fmt.Errorf("%w; run the same command again to go on", err)
	}
	return nil
}

func deadLettersPurge(ctx context.Context, o *DeadLettersOptions) error {
	before, err := parseBefore(o.Before)
	if err != nil {
		return err
	}
	st, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if !o.Yes {
		if !o.g.io.InTTY {
			return usageErrorf("refusing to delete without --yes (no terminal to confirm on)")
		}
		if !confirm(o.g.io, fmt.Sprintf("Delete dead letters created before %s?", event.FormatTime(before))) {
			return fmt.Errorf("cancelled")
		}
	}
	n, err := st.PurgeDeadLetters(ctx, before, o.Reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.g.io.Out, "deleted %d dead letter(s) created before %s\n", n, event.FormatTime(before))
	return nil
}

// parseBefore reads an RFC 3339 time or a duration ago.
func parseBefore(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, usageErrorf("--before must be an RFC 3339 time or a duration such as 720h, got %q", s)
}
