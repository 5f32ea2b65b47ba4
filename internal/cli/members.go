package cli

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/store"
)

// MembersOptions are the inputs of the members commands.
type MembersOptions struct {
	g          *globals
	Org        string
	Merchant   string
	Recipients []string
	File       string
	Output     string
	flags      map[string]*pflag.Flag
}

func newCmdMembers(g *globals) *cobra.Command {
	o := &MembersOptions{g: g}
	cmd := &cobra.Command{
		Use:   "members",
		Short: "Manage who belongs to an organizer or a merchant",
		Long: `Messages with recipientScope "org" go to the members of their organizerId,
and "merchant" ones to the members of their merchantId. These commands keep
those memberships in the database.

A message whose group has no members becomes a dead letter (no_recipients);
after adding the members,
  signalctl deadletters replay --reason no_recipients
delivers it.`,
		Example: `  signalctl members add --org org-1 u1 u2
  signalctl members add --merchant m-7 u3
  signalctl members list --org org-1
  signalctl members remove --org org-1 u2
  signalctl members import members.csv   # columns scope,scope_id,recipient_id`,
	}
	pf := cmd.PersistentFlags()
	pf.String("database-url", "", "PostgreSQL URL (database.url)")
	o.flags = map[string]*pflag.Flag{"database.url": pf.Lookup("database-url")}

	scopeFlags := func(c *cobra.Command) {
		c.Flags().StringVar(&o.Org, "org", "", "organizer id")
		c.Flags().StringVar(&o.Merchant, "merchant", "", "merchant id")
		c.MarkFlagsMutuallyExclusive("org", "merchant")
	}
	add := &cobra.Command{
		Use: "add --org ID | --merchant ID RECIPIENT...", Short: "Add recipients to a group",
		Example: "  signalctl members add --org org-1 u1 u2", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Recipients = args
			return membersChange(cmd.Context(), o, true)
		},
	}
	remove := &cobra.Command{
		Use: "remove --org ID | --merchant ID RECIPIENT...", Short: "Remove recipients from a group",
		Example: "  signalctl members remove --merchant m-7 u3", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Recipients = args
			return membersChange(cmd.Context(), o, false)
		},
	}
	list := &cobra.Command{
		Use: "list [--org ID | --merchant ID]", Short: "List a group's members (all groups without a flag)",
		Example: "  signalctl members list --org org-1\n  signalctl members list -o json", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return membersList(cmd.Context(), o) },
	}
	addOutputFlag(list, &o.Output)
	imp := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Add memberships from a CSV file (scope,scope_id,recipient_id)",
		Long: `Add memberships from a CSV file with the columns scope,scope_id,recipient_id
(a header row with those names is allowed; scope is org or merchant). "-"
reads standard input. Every row is checked before anything is written;
existing memberships are kept.`,
		Example: "  signalctl members import members.csv\n  printf 'org,org-1,u1\\n' | signalctl members import -",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			return membersImport(cmd.Context(), o)
		},
	}
	for _, c := range []*cobra.Command{add, remove, list} {
		scopeFlags(c)
		_ = c.RegisterFlagCompletionFunc("org", completeGroups(g, event.ScopeOrg))
		_ = c.RegisterFlagCompletionFunc("merchant", completeGroups(g, event.ScopeMerchant))
	}
	add.ValidArgsFunction = completeRecipients(g)
	remove.ValidArgsFunction = completeRecipients(g)
	cmd.AddCommand(add, remove, list, imp)
	return cmd
}

func (o *MembersOptions) group(required bool) (event.ScopeKey, error) {
	switch {
	case o.Org != "":
		return event.ScopeKey{Scope: event.ScopeOrg, ID: o.Org}, nil
	case o.Merchant != "":
		return event.ScopeKey{Scope: event.ScopeMerchant, ID: o.Merchant}, nil
	case required:
		return event.ScopeKey{}, usageErrorf("say which group: --org ID or --merchant ID")
	}
	return event.ScopeKey{}, nil
}

func (o *MembersOptions) open(ctx context.Context) (*store.Store, error) {
	cfg, err := o.g.load(o.flags)
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, cfg.Database.URL, 2)
}

func membersChange(ctx context.Context, o *MembersOptions, add bool) error {
	key, err := o.group(true)
	if err != nil {
		return err
	}
	var ms []store.Membership
	for _, r := range o.Recipients {
		if err := checkID("recipient", r); err != nil {
			return err
		}
		ms = append(ms, store.Membership{Scope: key.Scope, ScopeID: key.ID, RecipientID: r})
	}
	if err := checkID(key.Scope, key.ID); err != nil {
		return err
	}
	st, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if add {
		n, err := st.AddMembers(ctx, ms)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.g.io.ErrOut, "Added %d member(s) to %s %s (%d already there).\n", n, key.Scope, key.ID, int64(len(ms))-n)
		return nil
	}
	n, err := st.RemoveMembers(ctx, ms)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.g.io.ErrOut, "Removed %d member(s) from %s %s.\n", n, key.Scope, key.ID)
	return nil
}

func membersList(ctx context.Context, o *MembersOptions) error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	key, _ := o.group(false)
	st, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.ListMembers(ctx, key)
	if err != nil {
		return err
	}
	if o.Output == FormatJSON {
		return writeJSON(o.g.io.Out, list)
	}
	rows := make([][]string, 0, len(list))
	for _, m := range list {
		rows = append(rows, []string{m.Scope, m.ScopeID, m.RecipientID, event.FormatTime(m.CreatedAt)})
	}
	printTable(o.g.io, []string{"SCOPE", "SCOPE ID", "RECIPIENT", "ADDED"}, rows)
	if len(list) == 0 {
		fmt.Fprintln(o.g.io.ErrOut, "No members.")
	}
	return nil
}

func membersImport(ctx context.Context, o *MembersOptions) error {
	var r io.Reader = o.g.io.In
	if o.File != "-" {
		f, err := os.Open(o.File)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	ms, err := parseMembersCSV(r, o.File)
	if err != nil {
		return err
	}
	st, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	bar := newProgress(o.g.io, len(ms), "importing")
	var added int64
	const chunk = 5000
	for i := 0; i < len(ms); i += chunk {
		part := ms[i:min(i+chunk, len(ms))]
		n, err := st.AddMembers(ctx, part)
		if err != nil {
			return fmt.Errorf("after %d of %d rows: %w", i, len(ms), err)
		}
		added += n
		bar.Add(len(part))
	}
	bar.Finish()
	fmt.Fprintf(o.g.io.ErrOut, "Imported %d row(s): %d new membership(s), %d already there.\n", len(ms), added, int64(len(ms))-added)
	return nil
}

// parseMembersCSV reads scope,scope_id,recipient_id rows, with an optional
// header, and names the line of the first bad row.
func parseMembersCSV(r io.Reader, name string) ([]store.Membership, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 3
	cr.TrimLeadingSpace = true
	var out []store.Membership
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w (want the columns scope,scope_id,recipient_id)", name, err)
		}
		line, _ := cr.FieldPos(0) // the file's line: blank lines count
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if first && strings.EqualFold(rec[0], "scope") && strings.EqualFold(rec[1], "scope_id") {
			continue
		}
		if rec[0] != event.ScopeOrg && rec[0] != event.ScopeMerchant {
			return nil, fmt.Errorf("%s line %d: scope must be org or merchant, got %q", name, line, rec[0])
		}
		// %v, not %w: a bad row is bad data (exit 1), like a bad scope,
		// not a usage error as the same check is for arguments.
		if err := checkID("scope_id", rec[1]); err != nil {
			return nil, fmt.Errorf("%s line %d: %v", name, line, err)
		}
		if err := checkID("recipient_id", rec[2]); err != nil {
			return nil, fmt.Errorf("%s line %d: %v", name, line, err)
		}
		out = append(out, store.Membership{Scope: rec[0], ScopeID: rec[1], RecipientID: rec[2]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no membership rows", name)
	}
	return out, nil
}

// checkID applies the message validation's rules to an id given on the
// command line, so a membership can never hold an id no message could match.
func checkID(what, id string) error {
	switch {
	case id == "":
		return usageErrorf("%s must not be empty", what)
	case len(id) > event.MaxIDBytes:
		return usageErrorf("%s is longer than %d bytes", what, event.MaxIDBytes)
	case strings.ContainsRune(id, 0):
		return usageErrorf("%s must not contain NUL", what)
	}
	return nil
}
