package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

func listAll(t *testing.T, s *store.Store, key event.ScopeKey) []string {
	t.Helper()
	var out []string
	for after := ""; ; {
		page, err := s.ListMembers(context.Background(), key, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < 3 {
			return out
		}
		after = page[len(page)-1]
	}
}

func TestChangeMembersReplacesAddsAndRemovesAGroup(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	org := event.ScopeKey{Scope: "org", ID: "org-1"}
	other := event.ScopeKey{Scope: "merchant", ID: "org-1"} // same id, other scope
	if _, err := s.ChangeMembers(ctx, other, event.OpReplace, store.SliceIDs([]string{"keep"})); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		op    string
		ids   []string
		want  event.MemberCounts
		after string
	}{
		{event.OpReplace, []string{"u3", "u1", "u2", "u1"}, event.MemberCounts{Added: 3, Members: 3}, "u1 u2 u3"},
		{event.OpReplace, []string{"u3", "u1", "u2"}, event.MemberCounts{Members: 3}, "u1 u2 u3"}, // idempotent
		{event.OpReplace, []string{"u2", "u4"}, event.MemberCounts{Added: 1, Removed: 2, Members: 2}, "u2 u4"},
		{event.OpAdd, []string{"u5", "u2"}, event.MemberCounts{Added: 1}, "u2 u4 u5"},
		{event.OpRemove, []string{"u4", "nobody"}, event.MemberCounts{Removed: 1}, "u2 u5"},
		{event.OpReplace, nil, event.MemberCounts{Removed: 2}, ""},
	}
	for i, st := range steps {
		n, err := s.ChangeMembers(ctx, org, st.op, store.SliceIDs(st.ids))
		if err != nil {
			t.Fatalf("step %d %s %v: %v", i+1, st.op, st.ids, err)
		}
		if n != st.want {
			t.Errorf("step %d %s %v = %+v, want %+v", i+1, st.op, st.ids, n, st.want)
		}
		if got := strings.Join(listAll(t, s, org), " "); got != st.after {
			t.Errorf("step %d: members %q, want %q", i+1, got, st.after)
		}
	}
	if got := listAll(t, s, other); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("the other scope's group changed: %v", got)
	}
}

func TestAFailingSourceRollsTheWholeChangeBack(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	org := event.ScopeKey{Scope: "org", ID: "org-1"}
	if _, err := s.ChangeMembers(ctx, org, event.OpAdd, store.SliceIDs([]string{"a", "b"})); err != nil {
		t.Fatal(err)
	}
	bad := errors.New("recipientIds[70000] must be a string")
	i := 0
	_, err := s.ChangeMembers(ctx, org, event.OpReplace, func() (string, error) {
		if i++; i > 70000 {
			return "", bad
		}
		return fmt.Sprintf("n%d", i), nil
	})
	if !errors.Is(err, bad) {
		t.Fatalf("err = %v, want the source's own error", err)
	}
	if got := strings.Join(listAll(t, s, org), " "); got != "a b" {
		t.Errorf("members after a failed replace: %q, want a b", got)
	}
	// The connection is fine for the next change, staged ids gone.
	n, err := s.ChangeMembers(ctx, org, event.OpReplace, store.SliceIDs([]string{"c"}))
	if err != nil || n != (event.MemberCounts{Added: 1, Removed: 2, Members: 1}) {
		t.Errorf("next replace = %+v, %v", n, err)
	}
}

// Two replaces of one group at once must leave one of the two sets, never
// a mix: each locks the group for its transaction.
func TestConcurrentReplacesOfAGroupDoNotMix(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	org := event.ScopeKey{Scope: "org", ID: "org-1"}
	sets := [][]string{}
	for k := 0; k < 4; k++ {
		var ids []string
		for i := 0; i < 2000; i++ {
			ids = append(ids, fmt.Sprintf("s%d-%04d", k, i))
		}
		sets = append(sets, ids)
	}
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, len(sets))
		for _, ids := range sets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.ChangeMembers(ctx, org, event.OpReplace, store.SliceIDs(ids))
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got := listAll(t, s, org)
		ok := false
		for _, ids := range sets {
			ok = ok || slices.Equal(got, ids)
		}
		if !ok {
			t.Fatalf("round %d: the group holds %d members, not exactly one of the sets (first %s, last %s)", round, len(got), got[0], got[len(got)-1])
		}
	}
}

func TestApplyMemberChangesKeepsTheirOrder(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	c := func(scope, id, op string, ids ...string) *event.MemberChange {
		return &event.MemberChange{Scope: scope, ScopeID: id, Op: op, RecipientIDs: ids}
	}
	changes := []*event.MemberChange{
		c("org", "o1", event.OpAdd, "u1", "u2"),
		c("merchant", "m1", event.OpReplace, "u9"),
		c("org", "o1", event.OpRemove, "u1"),
		c("org", "o1", event.OpAdd, "u1", "u3"),
		c("org", "o1", event.OpReplace, "u3", "u4"),
		c("org", "o1", event.OpAdd, "u5"),
		c("merchant", "m1", event.OpReplace),
	}
	var counts []event.MemberCounts
	err := s.InTx(ctx, func(tx *store.Tx) error {
		var err error
		counts, err = tx.ApplyMemberChanges(ctx, changes)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(listAll(t, s, event.ScopeKey{Scope: "org", ID: "o1"}), " "); got != "u3 u4 u5" {
		t.Errorf("o1 = %q, want u3 u4 u5 (the changes in order)", got)
	}
	if got := listAll(t, s, event.ScopeKey{Scope: "merchant", ID: "m1"}); len(got) != 0 {
		t.Errorf("m1 = %v, want emptied by the last replace", got)
	}
	want := []event.MemberCounts{{Added: 2}, {Added: 1}, {Removed: 1}, {Added: 2}, {Added: 1, Removed: 2}, {Added: 1}, {Removed: 1}}
	if !slices.Equal(counts, want) {
		t.Errorf("counts = %+v, want %+v", counts, want)
	}
}

func TestScopeIDsPagesThroughGroupsWithMembers(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	for i := 0; i < 7; i++ {
		key := event.ScopeKey{Scope: "org", ID: fmt.Sprintf("org-%d", i)}
		if _, err := s.ChangeMembers(ctx, key, event.OpAdd, store.SliceIDs([]string{"a", "b", "c"})); err != nil {
			t.Fatal(err)
		}
	}
	// A merchant whose id sorts among the organizers' must not appear.
	s.ChangeMembers(ctx, event.ScopeKey{Scope: "merchant", ID: "org-2b"}, event.OpAdd, store.SliceIDs([]string{"a"}))
	s.ChangeMembers(ctx, event.ScopeKey{Scope: "org", ID: "org-3"}, event.OpReplace, store.SliceIDs(nil))
	var got []string
	for after := ""; ; {
		page, err := s.ScopeIDs(ctx, "org", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1]
	}
	if strings.Join(got, " ") != "org-0 org-1 org-2 org-4 org-5 org-6" {
		t.Errorf("org ids = %v (emptied org-3 and the merchant must not appear)", got)
	}
}

func TestPreferencesAreReadForABatchsRecipientsInOneRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	if p, err := s.Preferences(ctx, "u1"); err != nil || !p.Empty() || p.MutedTypes == nil {
		t.Fatalf("preferences of nobody = %+v, %v; want empty lists", p, err)
	}
	s.ChangeMembers(ctx, event.ScopeKey{Scope: "org", ID: "o1"}, event.OpAdd, store.SliceIDs([]string{"m1", "m2"}))
	set := func(r string, p event.Preferences) {
		t.Helper()
		if err := s.SetPreferences(ctx, r, p); err != nil {
			t.Fatal(err)
		}
	}
	set("u1", event.Preferences{MutedTypes: []string{"A"}})
	set("m2", event.Preferences{MutedOrganizers: []string{"o9"}, MutedMerchants: []string{"shop"}})
	set("far", event.Preferences{MutedTypes: []string{"A"}})
	var prefs map[string]*event.Preferences
	var members map[event.ScopeKey][]string
	err := s.InTx(ctx, func(tx *store.Tx) error {
		var err error
		members, prefs, err = tx.Recipients(ctx, []event.ScopeKey{{Scope: "org", ID: "o1"}}, []string{"u1", "u2", "u1"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(prefs) != 2 || prefs["u1"] == nil || prefs["m2"] == nil || !slices.Equal(prefs["m2"].MutedMerchants, []string{"shop"}) {
		t.Errorf("preferences = %v, want u1's and m2's only", prefs)
	}
	if !slices.Equal(members[event.ScopeKey{Scope: "org", ID: "o1"}], []string{"m1", "m2"}) {
		t.Errorf("members = %v", members)
	}
	set("u1", event.Preferences{})
	if n := countRows(t, s, `SELECT count(*) FROM recipient_preferences`); n != 2 {
		t.Errorf("%d rows after u1 unmuted everything, want 2 (an empty one is deleted)", n)
	}
}

func countRows(t *testing.T, s *store.Store, sql string) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
