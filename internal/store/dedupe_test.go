package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// sameEvent stores one copy per offset of the same event for recipients.
func sameEvent(t *testing.T, s *store.Store, key string, offsets []int64, recipients ...string) []*event.Row {
	t.Helper()
	var all []*event.Row
	for _, off := range offsets {
		rows := rowsFor(event.Source{Topic: "t", Offset: off, Timestamp: time.Now()}, recipients...)
		for _, r := range rows {
			r.EventKey = []byte(strings.Repeat(key, 16)[:16])
		}
		insert(t, s, rows)
		all = append(all, rows...)
	}
	return all
}

func allGroups(t *testing.T, s *store.Store, f store.DedupeFilter) []store.DuplicateGroup {
	t.Helper()
	var out []store.DuplicateGroup
	var after store.Cursor
	for {
		g, next, err := s.DuplicateGroups(context.Background(), f, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, g...)
		if next == nil {
			return out
		}
		after = *next
	}
}

func TestDedupeFindsAProducerThatSentTwiceAndKeepsTheOldest(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	rows := sameEvent(t, s, "a", []int64{1, 2, 3}, "u1", "u2") // one event, sent three times
	sameEvent(t, s, "b", []int64{4}, "u1")                     // a distinct event: no duplicate

	groups := allGroups(t, s, store.DedupeFilter{})
	if len(groups) != 2 {
		t.Fatalf("groups = %+v, want one per recipient", groups)
	}
	for _, g := range groups {
		if g.Copies != 3 || len(g.Remove) != 2 || g.Keep != rows[0].ID && g.Keep != rows[1].ID {
			t.Errorf("group %s: copies %d keep %s remove %v", g.RecipientID, g.Copies, g.Keep, g.Remove)
		}
	}
	if only := allGroups(t, s, store.DedupeFilter{Recipient: "u2"}); len(only) != 1 || only[0].RecipientID != "u2" {
		t.Errorf("--recipient u2 gave %+v", only)
	}
	if none := allGroups(t, s, store.DedupeFilter{Type: "OTHER"}); len(none) != 0 {
		t.Errorf("--type OTHER gave %+v", none)
	}
	if none := allGroups(t, s, store.DedupeFilter{Since: time.Now().Add(time.Hour)}); len(none) != 0 {
		t.Errorf("--since in the future gave %+v", none)
	}

	// Copies are deleted as the inbox deletes: one change of each
	// recipient's stream, staged; no row leaves the table.
	st := &stager{}
	removed, err := s.RemoveDuplicates(ctx, groups, st.stage)
	if err != nil || len(removed) != 4 {
		t.Fatalf("removed %v, %v", removed, err)
	}
	if n := count(t, s, `SELECT count(*) FROM notifications`); n != 7 {
		t.Errorf("%d rows, want the 7 kept (copies are deleted, not removed)", n)
	}
	var kept []string
	for _, r := range []string{"u1", "u2"} {
		for _, row := range list(t, s, r, event.InboxFilter{Archived: event.ArchivedAny}) {
			kept = append(kept, fmt.Sprintf("%d%s", row.Source.Offset, r))
		}
	}
	if strings.Join(kept, ",") != "4u1,1u1,1u2" {
		t.Errorf("kept %v, want the oldest copy of each group and the distinct event", kept)
	}
	for _, id := range removed {
		if !slices.ContainsFunc(rows[2:], func(r *event.Row) bool { return r.ID == id }) {
			t.Errorf("removed %s, which is not a later copy", id)
		}
	}
	if len(st.pushes) != 2 || !slices.Equal(st.settled, []bool{true, true}) {
		t.Fatalf("staged %d changes, settled %v; want one per recipient, committed", len(st.pushes), st.settled)
	}
	for _, p := range st.pushes {
		f := decodeFrame(t, p.Frame)
		var d event.StateChange
		if err := json.Unmarshal(f.Data, &d); err != nil || f.Topic != event.TopicNotificationUpdated || len(d.IDs) != 2 || d.IsDeleted == nil || !*d.IsDeleted {
			t.Errorf("staged %s", p.Frame)
		}
		r, _ := event.RecipientOfRoom(p.Room)
		if head := checkDense(t, s, r); p.Pos != head {
			t.Errorf("%s: change at %d, head %d", r, p.Pos, head)
		}
	}
	for r, want := range map[string]event.Counts{"u1": {Total: 2, Unread: 2, Unseen: 2}, "u2": {Total: 1, Unread: 1, Unseen: 1}} {
		if got := counts(t, s, r); got != want || got != recount(t, s, r) {
			t.Errorf("%s: counts %+v, want %+v", r, got, want)
		}
	}
	// A rerun (after an interruption) has nothing left to do, and a new
	// search finds no group.
	if again, err := s.RemoveDuplicates(ctx, groups, st.stage); err != nil || len(again) != 0 || len(st.pushes) != 2 {
		t.Errorf("a second run removed %v (%v), staged %d changes", again, err, len(st.pushes)-2)
	}
	if left := allGroups(t, s, store.DedupeFilter{}); len(left) != 0 {
		t.Errorf("groups after the removal: %+v", left)
	}
	checkDense(t, s, "u1")
}

// keptOf returns the only copy of the recipient's that is not deleted.
func keptOf(t *testing.T, s *store.Store, recipient string) *event.Row {
	t.Helper()
	rows := list(t, s, recipient, event.InboxFilter{Archived: event.ArchivedAny})
	if len(rows) != 1 {
		t.Fatalf("%d copies left, want 1", len(rows))
	}
	return rows[0]
}

func TestDedupeKeepsReadWhenARemovedCopyWasRead(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	rows := sameEvent(t, s, "a", []int64{1, 2}, "u1")
	mustMark(t, s, "u1", event.OpRead, rows[1].ID)
	groups := allGroups(t, s, store.DedupeFilter{})
	if len(groups) != 1 || !groups[0].AnyRead {
		t.Fatalf("groups %+v", groups)
	}
	st := &stager{}
	if _, err := s.RemoveDuplicates(ctx, groups, st.stage); err != nil {
		t.Fatal(err)
	}
	if kept := keptOf(t, s, "u1"); kept.ID != rows[0].ID || !kept.IsRead || !kept.IsSeen {
		t.Errorf("kept %s (%+v), want the oldest (%s), read", kept.ID, kept, rows[0].ID)
	}
	if len(st.pushes) != 2 {
		t.Errorf("staged %d changes, want 2 (the delete and the read)", len(st.pushes))
	}
	if c := counts(t, s, "u1"); c != (event.Counts{Total: 1}) {
		t.Errorf("counts %+v", c)
	}
	checkDense(t, s, "u1")
}

// An apply cut between a recipient's two changes (its delete and the
// kept copy's read mark) is finished by running it again: the kept copy
// ends read.
func TestDedupeRerunAfterAnInterruptionKeepsTheReadState(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	rows := sameEvent(t, s, "a", []int64{1, 2}, "u1")
	mustMark(t, s, "u1", event.OpRead, rows[1].ID)
	// The second change fails, as if the process stopped there.
	if _, err := s.RemoveDuplicates(ctx, allGroups(t, s, store.DedupeFilter{}), (&stager{failAt: 2}).stage); err == nil {
		t.Fatal("no error")
	}
	if _, err := s.RemoveDuplicates(ctx, allGroups(t, s, store.DedupeFilter{}), nil); err != nil {
		t.Fatal(err)
	}
	if kept := keptOf(t, s, "u1"); kept.ID != rows[0].ID || !kept.IsRead {
		t.Errorf("kept %s (read: %v), want the oldest (%s), read: a copy of it was read", kept.ID, kept.IsRead, rows[0].ID)
	}
	if c := counts(t, s, "u1"); c != (event.Counts{Total: 1}) {
		t.Errorf("counts %+v", c)
	}
}

func TestDedupeSearchWalksTheIndexOnALargeTable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 300,000-row table; run without -short")
	}
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	// 300,000 rows over 30,000 recipients, one event in a thousand
	// duplicated; ids of today's first millisecond (its partition).
	today := store.DayBound(time.Now()).String()[:13]
	if err := s.EnsurePartitions(ctx, []time.Time{time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Pool.Exec(ctx, `
		INSERT INTO notifications (id, seq, recipient_id, type, organizer_id, actor_id, actor, content, data, occurred_at, event_key, created_at)
		SELECT overlay(gen_random_uuid()::text placing $1 from 1 for 13)::uuid, i, 'u' || (i % 30000), 'PAYMENT_SUCCESS', 'org-1', 'a1', '{}', 'c', '{}', now(),
		       CASE WHEN i % 1000 = 0 THEN decode('00000000000000000000000000000000', 'hex')
		            ELSE substring(sha256(int8send(i)) for 16) END,
		       now() - (i || ' seconds')::interval
		FROM generate_series(1, 300000) i`, today)
	if err != nil {
		t.Fatal(err)
	}
	s.Pool.Exec(ctx, `VACUUM ANALYZE notifications`)
	plan, err := s.ExplainDuplicates(ctx, store.DedupeFilter{Since: time.Now().Add(-time.Hour)}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "Index Only Scan using "+store.DayPartition(time.Now())+"_recipient_id_event_key_idx") || strings.Contains(plan, "Seq Scan") ||
		sortNode.MatchString(plan) || strings.Contains(plan, "HashAggregate") {
		t.Errorf("the duplicate search must walk the (recipient_id, event_key) index in order, without a table scan, sort or hash:\n%s", plan)
	}
	start := time.Now()
	groups := allGroupsChunked(t, s, 1000)
	// i % 1000 == 0 holds for 300 rows, spread over 30 recipients (i % 30000).
	if len(groups) != 30 || groups[0].Copies != 10 {
		t.Errorf("found %d groups, want 30 of 10 copies", len(groups))
	}
	t.Logf("searched 300,000 rows in %s", time.Since(start))
}

// sortNode is a Sort step of a plan (a Merge Append's "Sort Key" is not one).
var sortNode = regexp.MustCompile(`(?m)^\s*(->\s+)?Sort\s+\(`)

func allGroupsChunked(t *testing.T, s *store.Store, chunk int) []store.DuplicateGroup {
	var out []store.DuplicateGroup
	var after store.Cursor
	for {
		g, next, err := s.DuplicateGroups(context.Background(), store.DedupeFilter{}, after, chunk)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, g...)
		if next == nil {
			return out
		}
		after = *next
	}
}
