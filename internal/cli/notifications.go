package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/relay"
	"github.com/signal-notify/signal/internal/store"
)

// NotificationsOptions are the inputs of the notifications commands.
type NotificationsOptions struct {
	g           *globals
	Recipient   string
	Unread      bool
	Unseen      bool
	Archived    bool
	Type        string
	OrganizerID string
	Limit       int
	IDs         []string
	Op          string
	All         bool
	Yes         bool
	Output      string
	flags       map[string]*pflag.Flag
}

// MaxListLimit bounds notifications list --limit.
const MaxListLimit = 1000

func newCmdNotifications(g *globals) *cobra.Command {
	o := &NotificationsOptions{g: g}
	cmd := &cobra.Command{
		Use:     "notifications",
		Aliases: []string{"inbox"},
		Short:   "Look at and change one recipient's stored notifications (support)",
		Long: `A recipient's inbox as the REST API serves it, read from the database: the
notifications with their states (read, seen, archived; deleted ones are not
listed), one in full, and the same state changes as the API — pushed to the
recipient's devices on every instance, like the API's.`,
		Example: `  signalctl notifications list --recipient u1
  signalctl notifications list --recipient u1 --unread --type PAYMENT_SUCCESS -o json
  signalctl notifications show --recipient u1 01a21c61-12e3-8527-828b-5db963cee5ab
  signalctl notifications mark --recipient u1 read 01a21c61-12e3-8527-828b-5db963cee5ab
  signalctl notifications mark --recipient u1 seen --all`,
	}
	pf := cmd.PersistentFlags()
	pf.String("database-url", "", "PostgreSQL URL (database.url)")
	pf.StringVar(&o.Recipient, "recipient", "", "the recipient (required)")
	_ = cmd.MarkPersistentFlagRequired("recipient")
	_ = cmd.RegisterFlagCompletionFunc("recipient", completeRecipients(g))
	o.flags = map[string]*pflag.Flag{"database.url": pf.Lookup("database-url")}

	list := &cobra.Command{
		Use: "list --recipient ID", Short: "List the recipient's notifications, newest first", Args: cobra.NoArgs,
		Example: "  signalctl notifications list --recipient u1 --unseen\n  signalctl notifications list --recipient u1 --archived -o json",
		RunE:    func(cmd *cobra.Command, _ []string) error { return notificationsList(cmd.Context(), o) },
	}
	f := list.Flags()
	f.BoolVar(&o.Unread, "unread", false, "unread ones only")
	f.BoolVar(&o.Unseen, "unseen", false, "unseen ones only")
	f.BoolVar(&o.Archived, "archived", false, "the archive (archived ones only)")
	f.StringVar(&o.Type, "type", "", "only this type (eventType)")
	f.StringVar(&o.OrganizerID, "organizer", "", "only this organizerId")
	f.IntVar(&o.Limit, "limit", 20, fmt.Sprintf("most notifications to list (1–%d)", MaxListLimit))
	addOutputFlag(list, &o.Output)

	show := &cobra.Command{
		Use: "show --recipient ID NOTIFICATION_ID", Short: "Show one notification in full, with its states and record", Args: cobra.ExactArgs(1),
		Example:           "  signalctl notifications show --recipient u1 01a21c61-12e3-8527-828b-5db963cee5ab",
		ValidArgsFunction: completeNotificationIDs(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.IDs = args
			return notificationsShow(cmd.Context(), o)
		},
	}
	addOutputFlag(show, &o.Output)

	ops := make([]string, len(event.Ops))
	for i, op := range event.Ops {
		ops[i] = string(op)
	}
	mark := &cobra.Command{
		Use:   "mark --recipient ID " + strings.Join(ops, "|") + " NOTIFICATION_ID... | --all",
		Short: "Change the state of notifications (pushed to the recipient's devices)",
		Long: fmt.Sprintf(`Change the state of some of the recipient's notifications, at most %d at once,
or with --all of every one (read, seen and delete only). Reading marks seen too.
The change is pushed to the recipient's devices on every instance
(observation/signal/notification/updated), as the REST API does.`, event.MaxChangeIDs),
		Example: "  signalctl notifications mark --recipient u1 unread 01a21c61-12e3-8527-828b-5db963cee5ab\n  signalctl notifications mark --recipient u1 delete --all --yes",
		Args:    cobra.MinimumNArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return ops, cobra.ShellCompDirectiveNoFileComp
			}
			return completeNotificationIDs(g)(cmd, args, prefix)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Op, o.IDs = args[0], args[1:]
			return notificationsMark(cmd.Context(), o)
		},
	}
	mark.Flags().BoolVar(&o.All, "all", false, "every notification of the recipient (read, seen, delete)")
	mark.Flags().BoolVarP(&o.Yes, "yes", "y", false, "delete --all without asking for confirmation")
	addOutputFlag(mark, &o.Output)
	cmd.AddCommand(list, show, mark)
	return cmd
}

func (o *NotificationsOptions) open(ctx context.Context) (*store.Store, error) {
	if err := checkID("recipient", o.Recipient); err != nil {
		return nil, err
	}
	cfg, err := o.g.load(o.flags)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, databaseURL(cfg), 2)
	if err != nil {
		return nil, err
	}
	if err := st.CheckSchema(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// statesText is a row's states in words.
func statesText(r *event.Row) string {
	var out []string
	if r.IsRead {
		out = append(out, "read")
	} else {
		out = append(out, "unread")
	}
	if !r.IsSeen {
		out = append(out, "unseen")
	}
	if r.IsArchived {
		out = append(out, "archived")
	}
	if r.IsDeleted {
		out = append(out, "deleted")
	}
	return strings.Join(out, ", ")
}

func notificationsList(ctx context.Context, o *NotificationsOptions) error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	if o.Limit < 1 || o.Limit > MaxListLimit {
		return usageErrorf("--limit must be from 1 to %d", MaxListLimit)
	}
	f := event.InboxFilter{Unread: o.Unread, Unseen: o.Unseen, Type: o.Type, OrganizerID: o.OrganizerID}
	if o.Archived {
		f.Archived = event.ArchivedOnly
	}
	st, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	rows, err := st.ListNotifications(ctx, o.Recipient, f, o.Limit, 0)
	if err != nil {
		return err
	}
	if o.Output == FormatJSON {
		items := make([]event.InboxItem, len(rows))
		for i, r := range rows {
			items[i] = r.Item()
		}
		return writeJSON(o.g.io.Out, items)
	}
	table := make([][]string, 0, len(rows))
	for _, r := range rows {
		table = append(table, []string{r.ID.String(), event.FormatTime(r.CreatedAt), r.Type, statesText(r), fitText(o.g.io, r.Content, 50)})
	}
	printTable(o.g.io, []string{"ID", "CREATED", "TYPE", "STATE", "CONTENT"}, table)
	c, _, err := st.Counts(ctx, o.Recipient)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.g.io.ErrOut, "%d listed. %s: %d unread, %d unseen, %d in the inbox.\n", len(rows), o.Recipient, c.Unread, c.Unseen, c.Total)
	return nil
}

// notificationView is one notification in full (show -o json).
type notificationView struct {
	event.InboxItem
	RecipientID string          `json:"recipientId"`
	IsDeleted   bool            `json:"isDeleted"`
	MerchantID  *string         `json:"merchantId"`
	Actor       event.Actor     `json:"actor"`
	OccurredAt  time.Time       `json:"occurredAt"`
	Seq         int64           `json:"seq"`
	Record      notificationSrc `json:"record"`
}

type notificationSrc struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"` // from the id: the record's time, to the millisecond
}

func notificationsShow(ctx context.Context, o *NotificationsOptions) error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	id, err := uuid.Parse(o.IDs[0])
	if err != nil {
		return usageErrorf("%q is not a notification id (a UUID)", o.IDs[0])
	}
	st, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := st.Notification(ctx, o.Recipient, id)
	if err != nil {
		if err == store.ErrNotFound {
			return fmt.Errorf("%s has no notification %s", o.Recipient, id)
		}
		return err
	}
	v := notificationView{InboxItem: r.Item(), RecipientID: r.RecipientID, IsDeleted: r.IsDeleted, MerchantID: event.StrPtr(r.MerchantID),
		Actor: r.Actor, OccurredAt: r.OccurredAt.UTC(), Seq: r.Seq,
		Record: notificationSrc{Topic: r.Source.Topic, Partition: r.Source.Partition, Offset: r.Source.Offset, Timestamp: store.TimeOfID(r.ID)}}
	if o.Output == FormatJSON {
		return writeJSON(o.g.io.Out, v)
	}
	data, _ := json.Marshal(r.Data)
	pairs := [][]string{
		{"id", r.ID.String()}, {"recipient", r.RecipientID}, {"state", statesText(r)}, {"type", r.Type},
		{"organizer", r.OrganizerID}, {"merchant", r.MerchantID}, {"actor", r.Actor.Name + " (" + r.Actor.Type + " " + r.Actor.ID + ")"},
		{"content", r.Content}, {"action url", r.ActionURL}, {"data", string(data)},
		{"occurred", event.FormatTime(r.OccurredAt)}, {"created", event.FormatTime(r.CreatedAt)},
		{"record", fmt.Sprintf("%s[%d]@%d, %s", r.Source.Topic, r.Source.Partition, r.Source.Offset, event.FormatTime(v.Record.Timestamp))},
		{"seq", strconv.FormatInt(r.Seq, 10)},
	}
	printTable(o.g.io, []string{"FIELD", "VALUE"}, pairs)
	return nil
}

// markResult is what notifications mark prints with -o json.
type markResult struct {
	Op      string   `json:"op"`
	Updated int64    `json:"updated"`
	IDs     []string `json:"ids"`
	All     bool     `json:"all"`
}

func notificationsMark(ctx context.Context, o *NotificationsOptions) error {
	op, ids, err := o.markArgs()
	if err != nil {
		return err
	}
	if o.All && op == event.OpDelete && !o.Yes {
		if !o.g.io.InTTY {
			return usageErrorf("refusing to delete every notification of %s without --yes (no terminal to confirm on)", o.Recipient)
		}
		if !confirm(o.g.io, fmt.Sprintf("Delete every notification of %s?", o.Recipient)) {
			return fmt.Errorf("cancelled")
		}
	}
	st, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	// The change reaches the recipient's devices on every instance as the
	// next change of its stream, relayed in its transaction.
	host, _ := os.Hostname()
	pub := relay.Publisher{Store: st, Origin: "signalctl-mark-" + host}
	stage := func(ctx context.Context, tx *store.Tx, pushes []event.Push) (func(bool), error) {
		return pub.Stage(ctx, tx, pushes)
	}
	var ch event.Change
	if o.All {
		ch, err = st.MarkAll(ctx, o.Recipient, op, stage)
	} else {
		ch, err = st.Mark(ctx, o.Recipient, op, ids, stage)
	}
	if err != nil {
		return err
	}
	if !o.All && len(ch.Found) < len(ids) {
		fmt.Fprintf(o.g.io.ErrOut, "%d of the ids are not %s's (or were deleted): left alone.\n", len(ids)-len(ch.Found), o.Recipient)
	}
	res := markResult{Op: string(op), Updated: ch.Updated, IDs: ch.Frame().IDs, All: ch.All}
	if o.Output == FormatJSON {
		return writeJSON(o.g.io.Out, res)
	}
	fmt.Fprintf(o.g.io.Out, "%s: %d notification(s) changed (%s)\n", o.Recipient, ch.Updated, op)
	return nil
}

// markArgs checks mark's arguments: the operation, and ids or --all.
func (o *NotificationsOptions) markArgs() (event.Op, []uuid.UUID, error) {
	if err := checkFormat(o.Output); err != nil {
		return "", nil, err
	}
	op, err := event.ParseOp(o.Op)
	if err != nil {
		return "", nil, usageErrorf("%v", err)
	}
	switch {
	case o.All && len(o.IDs) > 0:
		return "", nil, usageErrorf("give notification ids or --all, not both")
	case o.All && !op.AppliesToAll():
		return "", nil, usageErrorf("--all applies to read, seen and delete, not %s", op)
	case !o.All && len(o.IDs) == 0:
		return "", nil, usageErrorf("give notification ids, or --all")
	case len(o.IDs) > event.MaxChangeIDs:
		return "", nil, usageErrorf("at most %d notification ids at once", event.MaxChangeIDs)
	}
	ids := make([]uuid.UUID, len(o.IDs))
	for i, s := range o.IDs {
		if ids[i], err = uuid.Parse(s); err != nil {
			return "", nil, usageErrorf("%q is not a notification id (a UUID)", s)
		}
	}
	return op, ids, nil
}

// completeNotificationIDs offers the recipient's newest notifications.
func completeNotificationIDs(g *globals) completeFunc {
	return func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		recipient, _ := cmd.Flags().GetString("recipient")
		if recipient == "" {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		out := withStore(g, func(ctx context.Context, st *store.Store) []string {
			rows, err := st.ListNotifications(ctx, recipient, event.InboxFilter{Archived: event.ArchivedAny}, 50, 0)
			if err != nil {
				return nil
			}
			var ids []string
			for _, r := range rows {
				if id := r.ID.String(); strings.HasPrefix(id, prefix) {
					ids = append(ids, id+"\t"+truncateText(r.Content, 40))
				}
			}
			return ids
		})
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	}
}
