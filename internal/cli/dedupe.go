package cli

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/relay"
	"github.com/signal-notify/signal/internal/store"
)

// DedupeOptions are the inputs of dedupe.
type DedupeOptions struct {
	g         *globals
	Apply     bool
	Yes       bool
	Since     string
	Until     string
	Recipient string
	Type      string
	Chunk     int
	Explain   bool
	Output    string
	flags     map[string]*pflag.Flag
}

func newCmdDedupe(g *globals) *cobra.Command {
	o := &DedupeOptions{g: g}
	cmd := &cobra.Command{
		Use:   "dedupe [--apply] [--yes] [--since T] [--until T] [--recipient ID] [--type T]",
		Short: "List duplicate notification rows, and remove them with --apply",
		Long: `Find duplicate notifications: rows of the same recipient made from the same
event — same event type, actor, organizer, merchant, data and occurredAt —
whether a producer sent it twice or the rows predate idempotent ingestion.
Redelivery of one Kafka record never makes duplicates; this is for the rest.

By default it only lists the groups and changes nothing. With --apply it
keeps the oldest row of each group (marked read if any removed copy was
read) and removes the others, one transaction per chunk of groups, so it is
safe to interrupt and run again. On a terminal it asks first unless --yes.

--since/--until select groups with at least one copy created in that window
(an RFC 3339 time, or a duration ago such as 2h). The search walks an index
in order and never sorts or hashes the table, so it stays fast on millions
of rows (--explain shows the plan).`,
		Example: `  signalctl dedupe
  signalctl dedupe --since 2h --type PAYMENT_SUCCESS -o json
  signalctl dedupe --recipient u1 --apply
  signalctl dedupe --since 2026-11-27T08:00:00Z --until 2026-11-27T09:00:00Z --apply --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return dedupeRun(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.Apply, "apply", false, "remove the duplicates (default: only list them)")
	f.BoolVarP(&o.Yes, "yes", "y", false, "with --apply: do not ask for confirmation")
	f.StringVar(&o.Since, "since", "", "groups with a copy created at or after T (RFC 3339, or a duration ago)")
	f.StringVar(&o.Until, "until", "", "groups with a copy created before T (RFC 3339, or a duration ago)")
	f.StringVar(&o.Recipient, "recipient", "", "only this recipient")
	f.StringVar(&o.Type, "type", "", "only this event type")
	f.IntVar(&o.Chunk, "chunk", 1000, "groups per transaction")
	f.BoolVar(&o.Explain, "explain", false, "print the query plan of the search and exit")
	f.String("database-url", "", "PostgreSQL URL (database.url)")
	o.flags = map[string]*pflag.Flag{"database.url": f.Lookup("database-url")}
	addOutputFlag(cmd, &o.Output)
	_ = cmd.RegisterFlagCompletionFunc("recipient", completeRecipients(g))
	_ = cmd.RegisterFlagCompletionFunc("type", fixedValues("PAYMENT_SUCCESS"))
	_ = cmd.RegisterFlagCompletionFunc("since", fixedValues("1h", "24h", "168h"))
	_ = cmd.RegisterFlagCompletionFunc("until", fixedValues("1h", "24h"))
	return cmd
}

type groupView struct {
	RecipientID string      `json:"recipientId"`
	Type        string      `json:"type"`
	EventKey    string      `json:"eventKey"`
	Copies      int         `json:"copies"`
	Keep        uuid.UUID   `json:"keep"`
	Remove      []uuid.UUID `json:"remove"`
	AnyRead     bool        `json:"anyRead"`
	FirstAt     time.Time   `json:"firstCreatedAt"`
	LastAt      time.Time   `json:"lastCreatedAt"`
}

type dedupeReport struct {
	Applied bool        `json:"applied"`
	Groups  []groupView `json:"groups"`
	Rows    int         `json:"duplicateRows"`
	Removed []uuid.UUID `json:"removed"`
}

func dedupeRun(ctx context.Context, o *DedupeOptions) error {
	f, err := o.filter()
	if err != nil {
		return err
	}
	cfg, err := o.g.load(o.flags)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, databaseURL(cfg), 2)
	if err != nil {
		return err
	}
	defer st.Close()
	io := o.g.io
	if o.Explain {
		plan, err := st.ExplainDuplicates(ctx, f, o.Chunk)
		if err != nil {
			return err
		}
		fmt.Fprint(io.Out, plan)
		return nil
	}
	// Pass 1: list every group (and count what --apply would remove).
	groups, err := st.AllDuplicateGroups(ctx, f, o.Chunk)
	if err != nil {
		return err
	}
	rep := newDedupeReport(groups)
	switch {
	case !o.Apply:
		o.printFound(rep)
		return nil
	case rep.Rows == 0:
		rep.Applied = true
		printGroups(io, o.Output, rep)
		fmt.Fprintln(io.ErrOut, "No duplicates: nothing to remove.")
		return nil
	}
	if err := o.confirm(rep); err != nil {
		return err
	}
	return o.remove(ctx, st, f, rep)
}

// filter checks the flags and makes the search's filter of them.
func (o *DedupeOptions) filter() (store.DedupeFilter, error) {
	f := store.DedupeFilter{Recipient: o.Recipient, Type: o.Type}
	if err := checkFormat(o.Output); err != nil {
		return f, err
	}
	if o.Chunk < 1 {
		return f, usageErrorf("--chunk must be at least 1")
	}
	var err error
	if o.Since != "" {
		if f.Since, err = parseBefore(o.Since); err != nil {
			return f, usageErrorf("--since: %v", err)
		}
	}
	if o.Until != "" {
		if f.Until, err = parseBefore(o.Until); err != nil {
			return f, usageErrorf("--until: %v", err)
		}
	}
	return f, nil
}

func newDedupeReport(groups []store.DuplicateGroup) dedupeReport {
	rep := dedupeReport{Groups: []groupView{}, Removed: []uuid.UUID{}}
	for _, g := range groups {
		rep.Groups = append(rep.Groups, groupView{RecipientID: g.RecipientID, Type: g.Type, EventKey: hex.EncodeToString(g.EventKey),
			Copies: g.Copies, Keep: g.Keep, Remove: g.Remove, AnyRead: g.AnyRead, FirstAt: g.FirstAt.UTC(), LastAt: g.LastAt.UTC()})
		rep.Rows += len(g.Remove)
	}
	return rep
}

// printFound prints the groups found without --apply, and what to do.
func (o *DedupeOptions) printFound(rep dedupeReport) {
	io := o.g.io
	printGroups(io, o.Output, rep)
	if o.Output == FormatJSON {
		return
	}
	if len(rep.Groups) == 0 {
		fmt.Fprintln(io.ErrOut, "No duplicates.")
	} else {
		fmt.Fprintf(io.ErrOut, "%d group(s), %d duplicate row(s). Nothing changed: run with --apply to remove them.\n", len(rep.Groups), rep.Rows)
	}
}

// confirm asks before removing, unless --yes; without a terminal to ask
// on, --yes is required.
func (o *DedupeOptions) confirm(rep dedupeReport) error {
	io := o.g.io
	if o.Yes {
		return nil
	}
	if !io.InTTY {
		return usageErrorf("refusing to remove %d row(s) without --yes (no terminal to confirm on)", rep.Rows)
	}
	if !confirm(io, fmt.Sprintf("Remove %d duplicate row(s) in %d group(s), keeping the oldest of each?", rep.Rows, len(rep.Groups))) {
		return fmt.Errorf("cancelled: nothing removed")
	}
	return nil
}

// remove is pass 2: the duplicates deleted as the inbox deletes (every
// device drops them), a chunk of groups at a time, then the report.
func (o *DedupeOptions) remove(ctx context.Context, st *store.Store, f store.DedupeFilter, rep dedupeReport) error {
	io := o.g.io
	host, _ := os.Hostname()
	pub := relay.Publisher{Store: st, Origin: "signalctl-dedupe-" + host}
	stage := func(ctx context.Context, tx *store.Tx, pushes []event.Push) (func(bool), error) {
		return pub.Stage(ctx, tx, pushes)
	}
	bar := newProgress(io, len(rep.Groups), "removing")
	rep.Applied = true
	removed, interrupted, err := st.RemoveAllDuplicates(ctx, f, o.Chunk, stage, bar.Add)
	rep.Removed = append(rep.Removed, removed...)
	if err != nil {
		return fmt.Errorf("%w (removed %d row(s) so far; run again to continue)", err, len(rep.Removed))
	}
	bar.Finish()
	if o.Output == FormatJSON {
		return writeJSON(io.Out, rep)
	}
	for _, id := range rep.Removed {
		fmt.Fprintf(io.Out, "removed %s\n", id)
	}
	if interrupted {
		return fmt.Errorf("interrupted after removing %d row(s): run the same command again to finish", len(rep.Removed))
	}
	fmt.Fprintf(io.ErrOut, "%s removed %d duplicate row(s) in %d group(s).\n", styled(io, "10", "✓"), len(rep.Removed), len(rep.Groups))
	return nil
}

func printGroups(io *IOStreams, format string, rep dedupeReport) {
	if format == FormatJSON {
		_ = writeJSON(io.Out, rep)
		return
	}
	if len(rep.Groups) == 0 {
		return
	}
	rows := make([][]string, 0, len(rep.Groups))
	for _, g := range rep.Groups {
		read := ""
		if g.AnyRead {
			read = "yes"
		}
		rows = append(rows, []string{g.RecipientID, g.Type, strconv.Itoa(g.Copies), g.Keep.String(), strconv.Itoa(len(g.Remove)), read,
			event.FormatTime(g.FirstAt), event.FormatTime(g.LastAt)})
	}
	printTable(io, []string{"RECIPIENT", "TYPE", "COPIES", "KEEP", "REMOVE", "READ", "FIRST", "LAST"}, rows)
}
