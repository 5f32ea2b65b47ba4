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
)

// MembersOptions are the inputs of the members commands.
type MembersOptions struct {
	g          *globals
	Org        string
	Merchant   string
	Recipients []string
	File       string
	Replace    bool
	Output     string
	flags      map[string]*pflag.Flag
}

// Membership is one row of members list.
type Membership struct {
	Scope       string `json:"scope"`
	ScopeID     string `json:"scopeId"`
	RecipientID string `json:"recipientId"`
}

func newCmdMembers(g *globals) *cobra.Command {
	o := &MembersOptions{g: g}
	cmd := &cobra.Command{
		Use:   "members",
		Short: "Manage who belongs to an organizer or a merchant",
		Long: `Messages with recipientScope "org" go to the members of their organizerId,
and "merchant" ones to the members of their merchantId, as the memberships are
when the message is ingested.

These commands go through the REST API (PUT/POST/DELETE /memberships) when a
server is configured — --server, $SIGNAL_SERVER or client.server — and
--database-url is not given; to the database otherwise (--database-url,
$SIGNAL_DATABASE_URL or database.url). Both ways run the same code in the end. In production the organization service
keeps memberships in sync itself, through the API or the members topic
(docs/operations.md).

A message whose group has no members becomes a dead letter (no_recipients);
after adding the members,
  signalctl deadletters replay --reason no_recipients
delivers it.`,
		Example: `  signalctl members add --org org-1 u1 u2
  signalctl members add --merchant m-7 u3 --server http://signal.internal:8080
  signalctl members list --org org-1
  signalctl members remove --org org-1 u2
  signalctl members import members.csv             # columns scope,scope_id,recipient_id
  signalctl members import --replace members.csv   # each group in the file becomes exactly its rows`,
	}
	pf := cmd.PersistentFlags()
	pf.String("database-url", "", "PostgreSQL URL (database.url): work on the database directly")
	pf.String("server", "", "base URL of a serve instance (client.server, $SIGNAL_SERVER): go through its REST API")
	pf.String("api-key", "", "REST API key (client.api_key, $SIGNAL_API_KEY; default: the key of this clone's serve --dev, sent to it only)")
	_ = cmd.RegisterFlagCompletionFunc("server", fixedValues("http://127.0.0.1:8080"))
	_ = cmd.RegisterFlagCompletionFunc("api-key", cobra.NoFileCompletions)
	o.flags = map[string]*pflag.Flag{"database.url": pf.Lookup("database-url"),
		"client.server": pf.Lookup("server"), "client.api_key": pf.Lookup("api-key")}

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
			return membersChange(cmd.Context(), o, event.OpAdd)
		},
	}
	remove := &cobra.Command{
		Use: "remove --org ID | --merchant ID RECIPIENT...", Short: "Remove recipients from a group",
		Example: "  signalctl members remove --merchant m-7 u3", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Recipients = args
			return membersChange(cmd.Context(), o, event.OpRemove)
		},
	}
	list := &cobra.Command{
		Use: "list [--org ID | --merchant ID]", Short: "List a group's members (all groups without a flag)",
		Example: "  signalctl members list --org org-1\n  signalctl members list -o json", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return membersList(cmd.Context(), o) },
	}
	addOutputFlag(list, &o.Output)
	imp := newCmdMembersImport(o)
	imp.Flags().BoolVar(&o.Replace, "replace", false, "make each group of the file exactly its rows")
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

// newCmdMembersImport is members import: memberships from a CSV file.
func newCmdMembersImport(o *MembersOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "import [--replace] FILE.csv",
		Short: "Add memberships from a CSV file (scope,scope_id,recipient_id)",
		Long: `Add memberships from a CSV file with the columns scope,scope_id,recipient_id
(a header row with those names is allowed; scope is org or merchant). "-"
reads standard input. Every row is checked before anything is written;
existing memberships are kept. With --replace, each group named in the file
becomes exactly its rows (members not listed are removed; groups not in the
file are left alone).`,
		Example: "  signalctl members import members.csv\n  printf 'org,org-1,u1\\n' | signalctl members import -\n  signalctl members import --replace nightly-export.csv",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			return membersImport(cmd.Context(), o)
		},
	}
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

func membersChange(ctx context.Context, o *MembersOptions, op string) error {
	key, err := o.group(true)
	if err != nil {
		return err
	}
	for _, r := range o.Recipients {
		if err := checkID("recipient", r); err != nil {
			return err
		}
	}
	if err := checkID(key.Scope, key.ID); err != nil {
		return err
	}
	svc, err := openMembers(ctx, o.g, o.flags)
	if err != nil {
		return err
	}
	defer svc.close()
	n, err := changeInChunks(ctx, svc, key, op, o.Recipients, &progress{})
	if err != nil {
		return err
	}
	if op == event.OpAdd {
		fmt.Fprintf(o.g.io.ErrOut, "Added %d member(s) to %s %s (%d already there).\n", n.Added, key.Scope, key.ID, int64(len(o.Recipients))-n.Added)
		return nil
	}
	fmt.Fprintf(o.g.io.ErrOut, "Removed %d member(s) from %s %s.\n", n.Removed, key.Scope, key.ID)
	return nil
}

// changeInChunks adds or removes ids a chunk at a time (one request or
// transaction each); a replace is always one.
func changeInChunks(ctx context.Context, svc memberService, key event.ScopeKey, op string, ids []string, bar *progress) (memberCounts, error) {
	const chunk = 5000
	if op == event.OpReplace {
		n, err := svc.change(ctx, key, op, ids)
		bar.Add(len(ids))
		return n, err
	}
	var total memberCounts
	for i := 0; i < len(ids); i += chunk {
		part := ids[i:min(i+chunk, len(ids))]
		n, err := svc.change(ctx, key, op, part)
		if err != nil {
			return total, fmt.Errorf("%s %s %s (after %d of %d): %w", op, key.Scope, key.ID, i, len(ids), err)
		}
		total.Added, total.Removed = total.Added+n.Added, total.Removed+n.Removed
		bar.Add(len(part))
	}
	return total, nil
}

func membersList(ctx context.Context, o *MembersOptions) error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	key, _ := o.group(false)
	svc, err := openMembers(ctx, o.g, o.flags)
	if err != nil {
		return err
	}
	defer svc.close()
	groups := []event.ScopeKey{key}
	if key.ID == "" {
		if groups, err = allGroups(ctx, svc); err != nil {
			return err
		}
	}
	list := []Membership{}
	for _, k := range groups {
		for cursor := ""; ; {
			page, err := svc.members(ctx, k, cursor)
			if err != nil {
				return err
			}
			for _, r := range page.Items {
				list = append(list, Membership{Scope: k.Scope, ScopeID: k.ID, RecipientID: r})
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
	}
	if o.Output == FormatJSON {
		return writeJSON(o.g.io.Out, list)
	}
	rows := make([][]string, 0, len(list))
	for _, m := range list {
		rows = append(rows, []string{m.Scope, m.ScopeID, m.RecipientID})
	}
	printTable(o.g.io, []string{"SCOPE", "SCOPE ID", "RECIPIENT"}, rows)
	if len(list) == 0 {
		fmt.Fprintln(o.g.io.ErrOut, "No members.")
	}
	return nil
}

// allGroups lists every group with members: merchants, then organizers,
// each in id order.
func allGroups(ctx context.Context, svc memberService) ([]event.ScopeKey, error) {
	var out []event.ScopeKey
	for _, scope := range []string{event.ScopeMerchant, event.ScopeOrg} {
		for cursor := ""; ; {
			page, err := svc.scopeIDs(ctx, scope, cursor)
			if err != nil {
				return nil, err
			}
			for _, id := range page.Items {
				out = append(out, event.ScopeKey{Scope: scope, ID: id})
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
	}
	return out, nil
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
	svc, err := openMembers(ctx, o.g, o.flags)
	if err != nil {
		return err
	}
	defer svc.close()
	// The file's groups, in the order they first appear.
	var keys []event.ScopeKey
	ids := map[event.ScopeKey][]string{}
	for _, m := range ms {
		k := event.ScopeKey{Scope: m.Scope, ID: m.ScopeID}
		if ids[k] == nil {
			keys = append(keys, k)
		}
		ids[k] = append(ids[k], m.RecipientID)
	}
	op := event.OpAdd
	if o.Replace {
		op = event.OpReplace
	}
	bar := newProgress(o.g.io, len(ms), "importing")
	var total memberCounts
	for _, k := range keys {
		n, err := changeInChunks(ctx, svc, k, op, ids[k], bar)
		if err != nil {
			return err
		}
		total.Added, total.Removed = total.Added+n.Added, total.Removed+n.Removed
	}
	bar.Finish()
	if o.Replace {
		fmt.Fprintf(o.g.io.ErrOut, "Replaced %d group(s) from %d row(s): %d membership(s) added, %d removed.\n", len(keys), len(ms), total.Added, total.Removed)
		return nil
	}
	fmt.Fprintf(o.g.io.ErrOut, "Imported %d row(s): %d new membership(s), %d already there.\n", len(ms), total.Added, int64(len(ms))-total.Added)
	return nil
}

// parseMembersCSV reads scope,scope_id,recipient_id rows, with an optional
// header, and names the line of the first bad row.
func parseMembersCSV(r io.Reader, name string) ([]Membership, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 3
	cr.TrimLeadingSpace = true
	var out []Membership
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
		if !event.IsGroupScope(rec[0]) {
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
		out = append(out, Membership{Scope: rec[0], ScopeID: rec[1], RecipientID: rec[2]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no membership rows", name)
	}
	return out, nil
}

// checkID applies the API's identifier rule to an id given on the command
// line, so a membership can never hold an id no message could match.
func checkID(what, id string) error {
	if id == "" {
		return usageErrorf("%s must not be empty", what)
	}
	if err := event.ValidateID(what, id); err != nil {
		return usageErrorf("%v", err)
	}
	return nil
}
