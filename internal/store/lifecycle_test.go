package store_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// The lifecycle fields are stored, read back by every reader (inbox item,
// catch-up's created frame) and shown as the live frame showed them.
func TestLifecycleFieldsRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	src := event.Source{Topic: "t", Offset: 1, Timestamp: time.Now().Truncate(time.Millisecond)}
	rows := rowsFor(src, "u1", "u2")
	expires := time.Now().Add(time.Hour).Truncate(time.Millisecond).UTC()
	rows[0].EventID, rows[0].ExpiresAt = "pay-1", expires
	rows[1].GroupKey = "payments"
	insert(t, s, rows)
	var b event.FrameBuilder
	live := []string{string(b.Frame(rows[0])), string(b.Frame(rows[1]))}

	for i, r := range rows {
		got, err := s.Notification(ctx, r.RecipientID, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.EventID != r.EventID || !got.ExpiresAt.Equal(r.ExpiresAt) || got.GroupKey != r.GroupKey {
			t.Errorf("row %d read back as %+v", i, got)
		}
		item, _ := json.Marshal(got.Item())
		var m map[string]any
		_ = json.Unmarshal(item, &m)
		switch i {
		case 0:
			if m["expiresAt"] != event.FormatTime(expires) || m["count"] != nil {
				t.Errorf("item %s", item)
			}
		case 1:
			if m["expiresAt"] != nil || m["count"] != 1.0 || len(m["actors"].([]any)) != 1 {
				t.Errorf("item %s", item)
			}
		}
		page, _ := streamAfter(t, s, r.RecipientID, 0, 10)
		if len(page.Changes) != 1 || dataOf(t, page.Changes[0].Frame) != dataOf(t, []byte(live[i])) {
			t.Errorf("catch-up %s, live %s", page.Changes[0].Frame, live[i])
		}
	}
}

// dataOf is a frame's data member.
func dataOf(t *testing.T, frame []byte) string {
	t.Helper()
	var f map[string]json.RawMessage
	if err := json.Unmarshal(frame, &f); err != nil {
		t.Fatal(err)
	}
	return string(f["data"])
}

// Sweepers on several instances share the due notifications: each is
// removed once, as one change of its recipient's stream, positions dense.
func TestConcurrentExpirySweepsRemoveEachNotificationOnce(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	var rows []*event.Row
	for i := 0; i < 40; i++ {
		src := event.Source{Topic: "t", Offset: int64(i), Timestamp: time.Now().Truncate(time.Millisecond)}
		for _, r := range rowsFor(src, "u1", "u2", "u3") {
			r.ExpiresAt = time.Now().Add(200 * time.Millisecond)
			if i%4 == 0 {
				r.ExpiresAt = time.Now().Add(time.Hour) // not due
			}
			rows = append(rows, r)
		}
	}
	insert(t, s, rows)
	time.Sleep(300 * time.Millisecond)
	st := &stager{}
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.ExpireDue(ctx, st.stage); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	removed := map[string]int{}
	for _, p := range st.pushes {
		var r event.Removed
		_ = json.Unmarshal([]byte(dataOf(t, p.Frame)), &r)
		if r.Reason != event.RemovedExpired {
			t.Errorf("reason %q", r.Reason)
		}
		for _, id := range r.IDs {
			removed[id]++
		}
	}
	if len(removed) != 90 {
		t.Errorf("%d notifications removed, want 90", len(removed))
	}
	for id, n := range removed {
		if n != 1 {
			t.Errorf("%s removed %d times", id, n)
		}
	}
	for _, r := range []string{"u1", "u2", "u3"} {
		checkDense(t, s, r)
		if c, _, err := s.Counts(ctx, r); err != nil || c.Total != 10 || c.Unread != 10 {
			t.Errorf("%s counts %+v %v, want 10 left", r, c, err)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM expiry_queue`); n != 30 {
		t.Errorf("%d queued, want the 30 not due", n)
	}
}

// Revocation applies to the members topic's changes too (a replace that
// drops a member), in the change's transaction, settled after it.
func TestMemberChangesRevokeTheScopesNotificationsWhenOn(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	st := &stager{}
	s.RevokeOnRemove(st.stage)
	src := event.Source{Topic: "t", Offset: 1, Timestamp: time.Now().Truncate(time.Millisecond)}
	rows := rowsFor(src, "u1", "u2")
	rows[0].MerchantID, rows[1].MerchantID = "m-7", "m-7"
	insert(t, s, rows)
	insert(t, s, rowsFor(event.Source{Topic: "t", Offset: 2, Timestamp: src.Timestamp}, "u1")) // no merchant
	key := event.ScopeKey{Scope: event.ScopeMerchant, ID: "m-7"}
	if _, err := s.ChangeMembers(ctx, key, event.OpAdd, store.SliceIDs([]string{"u1", "u2"})); err != nil {
		t.Fatal(err)
	}
	err := s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ApplyMemberChanges(ctx, []*event.MemberChange{{Scope: event.ScopeMerchant, ScopeID: "m-7", Op: event.OpReplace, RecipientIDs: []string{"u2"}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.pushes) != 1 || st.pushes[0].Room != event.NotificationRoom("u1") || len(st.settled) != 1 || !st.settled[0] {
		t.Fatalf("pushes %+v settled %v", st.pushes, st.settled)
	}
	if got := dataOf(t, st.pushes[0].Frame); got != `{"ids":["`+rows[0].ID.String()+`"],"reason":"revoked"}` {
		t.Errorf("change %s", got)
	}
	for r, want := range map[string]int64{"u1": 1, "u2": 1} {
		if c, _, err := s.Counts(ctx, r); err != nil || c.Total != want {
			t.Errorf("%s counts %+v %v", r, c, err)
		}
	}
	checkDense(t, s, "u1")
}

// groupAndInsert is ingest's order: group, then insert what is left.
func groupAndInsert(t *testing.T, s *store.Store, rows []*event.Row) (pushes []event.Push) {
	t.Helper()
	ensurePartitions(t, s, rows)
	err := s.InTx(context.Background(), func(tx *store.Tx) error {
		keep, _, p, err := tx.GroupRows(context.Background(), rows, time.Hour)
		if err != nil {
			return err
		}
		pushes = p
		_, err = tx.InsertNotifications(context.Background(), keep)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pushes
}

// A grouped record delivered again (in another batch split, too) is not
// counted again: the rows that joined an item are remembered.
func TestGroupingCountsARedeliveredRecordOnce(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ts := time.Now().Truncate(time.Millisecond)
	batch := func(from, to int) []*event.Row {
		var out []*event.Row
		for i := from; i < to; i++ {
			r := rowsFor(event.Source{Topic: "t", Offset: int64(i), Timestamp: ts}, "u1")[0]
			r.GroupKey = "g"
			out = append(out, r)
		}
		return out
	}
	groupAndInsert(t, s, batch(0, 3))                        // one item, count 3
	if p := groupAndInsert(t, s, batch(0, 3)); len(p) != 0 { // the same batch again
		t.Errorf("a redelivery made %d changes", len(p))
	}
	if p := groupAndInsert(t, s, batch(1, 5)); len(p) != 1 { // split differently, with two new records
		t.Errorf("%d changes, want the item's one update", len(p))
	}
	var n, count int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*), max(group_count) FROM notifications`).Scan(&n, &count); err != nil {
		t.Fatal(err)
	}
	if n != 1 || count != 5 {
		t.Errorf("%d rows, count %d; want one item of 5", n, count)
	}
	checkDense(t, s, "u1")
}
