package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// inboxOf stores n notifications for recipient, one per record (offsets
// from first), in one transaction, oldest first.
func inboxOf(t *testing.T, s *store.Store, recipient string, first, n int, edit func(i int, r *event.Row)) []*event.Row {
	t.Helper()
	ts := time.Now().UTC().Truncate(time.Millisecond)
	var rows []*event.Row
	for i := 0; i < n; i++ {
		r := rowsFor(event.Source{Topic: "t", Offset: int64(first + i), Timestamp: ts}, recipient)[0]
		if edit != nil {
			edit(i, r)
		}
		rows = append(rows, r)
	}
	insert(t, s, rows)
	return rows
}

func mustMark(t *testing.T, s *store.Store, recipient string, op event.Op, ids ...uuid.UUID) event.Change {
	t.Helper()
	ch, err := s.Mark(context.Background(), recipient, op, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func mustMarkAll(t *testing.T, s *store.Store, recipient string, op event.Op) event.Change {
	t.Helper()
	ch, err := s.MarkAll(context.Background(), recipient, op, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// counts are the recipient's counts as GET /notifications/counts gives
// them, which must be at the stream's head.
func counts(t *testing.T, s *store.Store, recipient string) event.Counts {
	t.Helper()
	c, pos, err := s.Counts(context.Background(), recipient)
	if err != nil {
		t.Fatal(err)
	}
	if head := streamPos(t, s, recipient); pos != head {
		t.Errorf("counts at position %d, the head is %d", pos, head)
	}
	return c
}

func list(t *testing.T, s *store.Store, recipient string, f event.InboxFilter) []*event.Row {
	t.Helper()
	rows, err := s.ListNotifications(context.Background(), recipient, f, 10000, 0)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func statesOf(t *testing.T, s *store.Store, recipient string, id uuid.UUID) event.States {
	t.Helper()
	r, err := s.Notification(context.Background(), recipient, id)
	if err != nil {
		t.Fatal(err)
	}
	return event.States{Read: r.IsRead, Seen: r.IsSeen, Archived: r.IsArchived, Deleted: r.IsDeleted}
}

// recount counts the recipient's notifications from their states, one by
// one: what the cached counts must always equal.
func recount(t *testing.T, s *store.Store, recipient string) event.Counts {
	t.Helper()
	var c event.Counts
	for _, r := range list(t, s, recipient, event.InboxFilter{Archived: event.ArchivedAny}) {
		c = c.Add(event.CountOf(event.States{Read: r.IsRead, Seen: r.IsSeen, Archived: r.IsArchived, Deleted: r.IsDeleted}))
	}
	return c
}

func TestEachStateChangeMovesItsStatesAndTheCounts(t *testing.T) {
	s, _ := pgtest.Open(t)
	rows := inboxOf(t, s, "u1", 0, 3, nil)
	inboxOf(t, s, "u2", 100, 1, nil) // someone else's, never touched
	a, b := rows[0].ID, rows[1].ID
	steps := []struct {
		name    string
		op      event.Op
		id      uuid.UUID
		changed bool
		want    event.States
		counts  event.Counts
	}{
		{"a new notification is unread and unseen", "", a, false, event.States{}, event.Counts{Unread: 3, Unseen: 3, Total: 3}},
		{"seen leaves it unread", event.OpSeen, a, true, event.States{Seen: true}, event.Counts{Unread: 3, Unseen: 2, Total: 3}},
		{"seen twice changes nothing", event.OpSeen, a, false, event.States{Seen: true}, event.Counts{Unread: 3, Unseen: 2, Total: 3}},
		{"read marks seen too", event.OpRead, b, true, event.States{Read: true, Seen: true}, event.Counts{Unread: 2, Unseen: 1, Total: 3}},
		{"unread keeps it seen", event.OpUnread, b, true, event.States{Seen: true}, event.Counts{Unread: 3, Unseen: 1, Total: 3}},
		{"archived leaves the counts", event.OpArchive, b, true, event.States{Seen: true, Archived: true}, event.Counts{Unread: 2, Unseen: 1, Total: 2}},
		{"unarchived comes back", event.OpUnarchive, b, true, event.States{Seen: true}, event.Counts{Unread: 3, Unseen: 1, Total: 3}},
		{"read while archived", event.OpArchive, a, true, event.States{Seen: true, Archived: true}, event.Counts{Unread: 2, Unseen: 1, Total: 2}},
		{"deleted is gone from everything", event.OpDelete, b, true, event.States{Seen: true, Deleted: true}, event.Counts{Unread: 1, Unseen: 1, Total: 1}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.op != "" {
				ch := mustMark(t, s, "u1", st.op, st.id)
				if got := len(ch.IDs) == 1; got != st.changed || ch.Updated != int64(len(ch.IDs)) {
					t.Errorf("changed %v (%+v), want %v", ch.IDs, ch, st.changed)
				}
				if st.changed && ch.Counts != st.counts {
					t.Errorf("the change answered counts %+v, want %+v", ch.Counts, st.counts)
				}
			}
			if got := statesOf(t, s, "u1", st.id); got != st.want {
				t.Errorf("states %+v, want %+v", got, st.want)
			}
			if got := counts(t, s, "u1"); got != st.counts {
				t.Errorf("counts %+v, want %+v", got, st.counts)
			}
		})
	}
	t.Run("a deleted notification cannot be changed again", func(t *testing.T) {
		if ch := mustMark(t, s, "u1", event.OpRead, b); len(ch.Found) != 0 || ch.Updated != 0 {
			t.Errorf("%+v", ch)
		}
	})
	t.Run("another recipient's notification is not found", func(t *testing.T) {
		if ch := mustMark(t, s, "u2", event.OpRead, a); len(ch.Found) != 0 {
			t.Errorf("%+v", ch)
		}
		if c := counts(t, s, "u2"); c != (event.Counts{Unread: 1, Unseen: 1, Total: 1}) {
			t.Errorf("u2's counts %+v", c)
		}
	})
	t.Run("more than the bound at once is refused", func(t *testing.T) {
		if _, err := s.Mark(context.Background(), "u1", event.OpRead, make([]uuid.UUID, event.MaxChangeIDs+1), nil); err == nil {
			t.Error("no error")
		}
	})
}

func TestAnAllOperationWinsOverEarlierMarksAndLaterMarksWinOverIt(t *testing.T) {
	s, _ := pgtest.Open(t)
	rows := inboxOf(t, s, "u1", 0, 5, nil)
	mustMark(t, s, "u1", event.OpRead, rows[0].ID)
	ch := mustMarkAll(t, s, "u1", event.OpRead)
	if ch.Updated != 4 || len(ch.IDs) != 4 || ch.IDs[0] != rows[4].ID || !ch.All {
		t.Errorf("read-all: %+v, want the 4 unread, newest first", ch)
	}
	if c := counts(t, s, "u1"); c != (event.Counts{Total: 5}) {
		t.Errorf("after read-all: %+v", c)
	}
	// An unread mark below the watermark is honoured …
	mustMark(t, s, "u1", event.OpUnread, rows[1].ID)
	if got := list(t, s, "u1", event.InboxFilter{Unread: true}); len(got) != 1 || got[0].ID != rows[1].ID {
		t.Errorf("unread after read-all then unread: %v", ids(got))
	}
	if c := counts(t, s, "u1"); c != (event.Counts{Unread: 1, Total: 5}) {
		t.Errorf("after unread: %+v", c)
	}
	// … until the next read-all.
	if ch := mustMarkAll(t, s, "u1", event.OpRead); ch.Updated != 1 || len(ch.IDs) != 1 || ch.IDs[0] != rows[1].ID {
		t.Errorf("second read-all: %+v", ch)
	}
	if got := list(t, s, "u1", event.InboxFilter{Unread: true}); len(got) != 0 {
		t.Errorf("unread after the second read-all: %v", ids(got))
	}
	// delete-all takes archived ones too; a new one after it is there.
	mustMark(t, s, "u1", event.OpArchive, rows[2].ID)
	if ch := mustMarkAll(t, s, "u1", event.OpDelete); ch.Updated != 5 {
		t.Errorf("delete-all: %+v", ch)
	}
	fresh := inboxOf(t, s, "u1", 10, 1, nil)
	if got := list(t, s, "u1", event.InboxFilter{Archived: event.ArchivedAny}); len(got) != 1 || got[0].ID != fresh[0].ID {
		t.Errorf("after delete-all and one more: %v", ids(got))
	}
	if c := counts(t, s, "u1"); c != (event.Counts{Unread: 1, Unseen: 1, Total: 1}) {
		t.Errorf("counts: %+v", c)
	}
	if ch := mustMarkAll(t, s, "u1", event.OpSeen); ch.Updated != 1 {
		t.Errorf("seen all: %+v", ch)
	}
	if c := counts(t, s, "u1"); c != (event.Counts{Unread: 1, Total: 1}) {
		t.Errorf("counts after seen all: %+v", c)
	}
}

// read-all takes its watermark at the stream's head under the state row's
// lock: it waits for a writer in flight, whose rows come before it in the
// stream and are read; a notification that commits after it stays unread.
func TestReadAllCoversAWriterInFlightAndNoLaterNotification(t *testing.T) {
	s, _ := pgtest.Open(t)
	inboxOf(t, s, "u1", 0, 2, nil)
	flight := rowsFor(event.Source{Topic: "t", Offset: 50, Timestamp: time.Now()}, "u1")
	end := openWriter(t, s, flight)
	var ch event.Change
	var err error
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		ch, err = s.MarkAll(context.Background(), "u1", event.OpRead, nil)
	}()
	waitBlocked(t, s, returned)
	end(true)
	<-returned
	if err != nil {
		t.Fatal(err)
	}
	if ch.Updated != 3 || ch.Pos != 4 || flight[0].Seq != 3 {
		t.Errorf("read-all %+v after the row at %d: want the 3 rows read, at position 4", ch, flight[0].Seq)
	}
	late := inboxOf(t, s, "u1", 60, 1, nil)
	if st := statesOf(t, s, "u1", flight[0].ID); !st.Read {
		t.Errorf("the row of the writer in flight is %+v, want read", st)
	}
	if st := statesOf(t, s, "u1", late[0].ID); st.Read || st.Seen {
		t.Errorf("the notification after read-all is %+v, want unread and unseen", st)
	}
	if c := counts(t, s, "u1"); c != (event.Counts{Unread: 1, Unseen: 1, Total: 4}) {
		t.Errorf("counts %+v", c)
	}
	if got := list(t, s, "u1", event.InboxFilter{Unread: true}); len(got) != 1 || got[0].ID != late[0].ID {
		t.Errorf("unread: %v", ids(got))
	}
}

// The counts on the state row must equal a recount after any sequence of
// new rows, state changes and epochs (retention), and every change must
// answer the counts GET /notifications/counts gives after it.
func TestCountsEqualARecountThroughRandomChanges(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var all []*event.Row
	next := 0
	add := func(n int) {
		rows := inboxOf(t, s, "u1", next, n, nil)
		all = append(all, rows...)
		next += n
		if c := rows[n-1].Counts; c != nil && *c != counts(t, s, "u1") {
			t.Fatalf("the last new row has counts %+v, GET counts %+v", *c, counts(t, s, "u1"))
		}
	}
	add(300)
	for step := 0; step < 120; step++ {
		var what string
		var ch event.Change
		switch k := rng.IntN(20); {
		case k == 0:
			what = "300 new"
			add(300)
		case k == 1:
			what = "5 new"
			add(5)
		case k == 2:
			op := []event.Op{event.OpRead, event.OpSeen, event.OpDelete}[rng.IntN(3)]
			if op == event.OpDelete && rng.IntN(3) > 0 {
				op = event.OpRead
			}
			what = "all " + string(op)
			ch = mustMarkAll(t, s, "u1", op)
		case k == 3:
			what = "new epoch"
			if _, err := s.Pool.Exec(ctx, `UPDATE inbox_epoch SET epoch = epoch + 1`); err != nil {
				t.Fatal(err)
			}
		default:
			op := event.Ops[rng.IntN(len(event.Ops))]
			if op == event.OpDelete && rng.IntN(4) > 0 {
				op = event.OpArchive
			}
			var pick []uuid.UUID
			for range 1 + rng.IntN(4) {
				pick = append(pick, all[rng.IntN(len(all))].ID)
			}
			what = fmt.Sprintf("%s of %d", op, len(pick))
			ch = mustMark(t, s, "u1", op, pick...)
		}
		got, want := counts(t, s, "u1"), recount(t, s, "u1")
		if got != want {
			t.Fatalf("step %d (%s): counts %+v, recount %+v", step, what, got, want)
		}
		if ch.Updated > 0 && ch.Counts != got {
			t.Fatalf("step %d (%s): the change answered %+v, counts %+v", step, what, ch.Counts, got)
		}
	}
	checkDense(t, s, "u1")
}

func TestListFiltersCombineAndPageByCursor(t *testing.T) {
	s, _ := pgtest.Open(t)
	rows := inboxOf(t, s, "u1", 0, 8, func(i int, r *event.Row) {
		if i%2 == 1 {
			r.Type = "REFUND"
		}
		if i >= 6 {
			r.OrganizerID = "org-2"
		}
	})
	id := func(i int) uuid.UUID { return rows[i].ID }
	mustMark(t, s, "u1", event.OpRead, id(0), id(1))
	mustMark(t, s, "u1", event.OpSeen, id(2))
	mustMark(t, s, "u1", event.OpArchive, id(3), id(1))
	mustMark(t, s, "u1", event.OpDelete, id(4))
	for _, tt := range []struct {
		name string
		f    event.InboxFilter
		want []int // newest first
	}{
		{"the inbox: neither archived nor deleted", event.InboxFilter{}, []int{7, 6, 5, 2, 0}},
		{"unread", event.InboxFilter{Unread: true}, []int{7, 6, 5, 2}},
		{"unseen", event.InboxFilter{Unseen: true}, []int{7, 6, 5}},
		{"archived", event.InboxFilter{Archived: event.ArchivedOnly}, []int{3, 1}},
		{"archived and unread", event.InboxFilter{Archived: event.ArchivedOnly, Unread: true}, []int{3}},
		{"every one not deleted", event.InboxFilter{Archived: event.ArchivedAny}, []int{7, 6, 5, 3, 2, 1, 0}},
		{"type", event.InboxFilter{Type: "REFUND"}, []int{7, 5}},
		{"type and unread and organizer", event.InboxFilter{Type: "PAYMENT_SUCCESS", Unread: true, OrganizerID: "org-2"}, []int{6}},
		{"organizer", event.InboxFilter{OrganizerID: "org-1"}, []int{5, 2, 0}},
		{"unknown organizer", event.InboxFilter{OrganizerID: "org-9"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var want []uuid.UUID
			for _, i := range tt.want {
				want = append(want, id(i))
			}
			if got := ids(list(t, s, "u1", tt.f)); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			// The same, two at a time.
			var paged []uuid.UUID
			var before int64
			for {
				page, err := s.ListNotifications(context.Background(), "u1", tt.f, 2, before)
				if err != nil {
					t.Fatal(err)
				}
				paged = append(paged, ids(page)...)
				if len(page) < 2 {
					break
				}
				before = page[1].Seq
			}
			if !slices.Equal(paged, want) {
				t.Errorf("paged %v, want %v", paged, want)
			}
		})
	}
	t.Run("unread below a read-all watermark comes from the marks, in order", func(t *testing.T) {
		mustMarkAll(t, s, "u1", event.OpRead)
		mustMark(t, s, "u1", event.OpUnread, id(2), id(0))
		newer := inboxOf(t, s, "u1", 100, 1, nil)
		want := []uuid.UUID{newer[0].ID, id(2), id(0)}
		if got := ids(list(t, s, "u1", event.InboxFilter{Unread: true})); !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
		page, _ := s.ListNotifications(context.Background(), "u1", event.InboxFilter{Unread: true}, 2, 0)
		rest, _ := s.ListNotifications(context.Background(), "u1", event.InboxFilter{Unread: true}, 2, page[1].Seq)
		if got := append(ids(page), ids(rest)...); !slices.Equal(got, want) {
			t.Errorf("paged %v, want %v", got, want)
		}
	})
}

func ids(rows []*event.Row) []uuid.UUID {
	var out []uuid.UUID
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

func TestAnAllOperationOverTheBoundCountsAllAndListsTheNewest(t *testing.T) {
	s, _ := pgtest.Open(t)
	rows := inboxOf(t, s, "u1", 0, event.MaxChangeIDs+200, nil)
	mustMark(t, s, "u1", event.OpArchive, rows[0].ID) // archived ones are read too
	ch := mustMarkAll(t, s, "u1", event.OpRead)
	if ch.Updated != int64(len(rows)) || len(ch.IDs) != event.MaxChangeIDs || ch.IDs[0] != rows[len(rows)-1].ID {
		t.Errorf("read-all updated %d, listed %d (first %s), want %d, %d, newest first", ch.Updated, len(ch.IDs), ch.IDs[0], len(rows), event.MaxChangeIDs)
	}
	if st := statesOf(t, s, "u1", rows[0].ID); !st.Read {
		t.Errorf("the archived one is %+v", st)
	}
}
