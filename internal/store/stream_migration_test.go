package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// migratedTo8 returns a database at version 8 (before the sync stream) and
// a store on it.
func migratedTo8(t *testing.T) (*store.Migrator, *store.Store) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	m, err := store.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.UpTo(8); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(context.Background(), url, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.EnsurePartitions(context.Background(), []time.Time{time.Now()}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// xidSeq is a seq as version 8 made it: a transaction id and a rank.
func xidSeq(xid, rank int64) int64 { return xid<<20 | rank }

// A database of version 8 holds rows numbered by transaction id, marks,
// watermarks of "all" operations taken at a global horizon (above the
// recipient's own newest row), and counts cached up to counts_seq.
// Migration 0009 starts each recipient's stream above all of it (head =
// floor), so that a new notification is never under an old watermark,
// makes every cached count stale (they covered less than head), and going
// down drops the stream's state and leaves the rows and their order as
// they were.
func TestMigration0009OnADatabaseHoldingRows(t *testing.T) {
	m, s := migratedTo8(t)
	ctx := context.Background()
	ts := time.Now().UTC()
	type old struct {
		recipient string
		seq       int64
	}
	olds := []old{{"u1", xidSeq(1000, 0)}, {"u1", xidSeq(1000, 1)}, {"u2", xidSeq(1003, 0)}, {"u1", xidSeq(1005, 0)}}
	var ids []uuid.UUID
	for i, o := range olds {
		id := event.NotificationID(event.Source{Topic: "t", Offset: int64(i), Timestamp: ts}, o.recipient)
		ids = append(ids, id)
		if _, err := s.Pool.Exec(ctx, `INSERT INTO notifications (id, seq, recipient_id, type, actor_id, actor, content, data, occurred_at, event_key)
			VALUES ($1, $2, $3, 'T', 'a', '{}', 'c', '{}', now(), '\x00')`, id, o.seq, o.recipient); err != nil {
			t.Fatal(err)
		}
	}
	// u1 read all at horizon 1006, then marked its oldest row unread; its
	// cache counted up to its second row (valid in the current epoch). u3
	// deleted all at horizon 2000; its rows are gone since (retention).
	u1wm, u3wm := xidSeq(1006, 0)-1, xidSeq(2000, 0)-1
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO notification_marks (id, recipient_id, seq, is_read, is_seen) VALUES ($1, 'u1', $2, false, true)`, []any{ids[0], olds[0].seq}},
		{`INSERT INTO inbox_states (recipient_id, read_wm, seen_wm, counts_epoch, counts_seq, total, unread, unseen)
			VALUES ('u1', $1, $1, (SELECT epoch FROM inbox_epoch), $2, 2, 1, 1)`, []any{u1wm, olds[1].seq}},
		{`INSERT INTO inbox_states (recipient_id, deleted_wm, counts_epoch, counts_seq) VALUES ('u3', $1, (SELECT epoch FROM inbox_epoch), $1)`, []any{u3wm}},
	} {
		if _, err := s.Pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}

	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM inbox_states WHERE counts_epoch = (SELECT epoch FROM inbox_epoch)`); n != 0 {
		t.Errorf("%d state rows keep their cached counts, want all stale", n)
	}
	heads, err := s.Heads(ctx, []string{"u1", "u2", "u3", "u4"})
	if err != nil {
		t.Fatal(err)
	}
	for r, want := range map[string]int64{"u1": u1wm, "u2": olds[2].seq, "u3": u3wm, "u4": 0} {
		if h := heads[r]; h.Pos != want || h.Floor != want || (h.Counts != nil) != (r == "u4") {
			t.Errorf("%s: head %+v, want head = floor = %d, counts unknown (known for a new recipient)", r, h, want)
		}
	}
	if c := counts(t, s, "u1"); c != (event.Counts{Total: 3, Unread: 1}) || c != recount(t, s, "u1") {
		t.Errorf("u1's counts after up %+v, want a recount of its 3 rows (%+v)", c, recount(t, s, "u1"))
	}
	if c := counts(t, s, "u2"); c != (event.Counts{Total: 1, Unread: 1, Unseen: 1}) {
		t.Errorf("u2's counts after up %+v", c)
	}

	// The new version at work: positions go on, dense, above the floor,
	// and new notifications are under no old watermark.
	fresh := inboxOf(t, s, "u1", 100, 1, nil)
	ch := mustMark(t, s, "u1", event.OpRead, ids[0])
	if fresh[0].Seq != u1wm+1 || ch.Pos != u1wm+2 {
		t.Errorf("after the floor %d: a row at %d, a change at %d", u1wm, fresh[0].Seq, ch.Pos)
	}
	gone := inboxOf(t, s, "u3", 100, 1, nil)
	for _, r := range []*event.Row{fresh[0], gone[0]} {
		if st := statesOf(t, s, r.RecipientID, r.ID); st != (event.States{}) {
			t.Errorf("%s's new notification is %+v: under a watermark of before", r.RecipientID, st)
		}
	}
	if c := counts(t, s, "u3"); c != (event.Counts{Total: 1, Unread: 1, Unseen: 1}) {
		t.Errorf("u3's counts %+v", c)
	}
	if p, err := s.PositionOf(ctx, "u1", ids[0]); err != nil || p != olds[0].seq {
		t.Errorf("PositionOf an old row = %d, %v; want its seq %d", p, err, olds[0].seq)
	}
	if _, ps := streamAfter(t, s, "u1", olds[0].seq, 10); !slices.Equal(ps, []int64{olds[1].seq, olds[3].seq, u1wm + 1, u1wm + 2}) {
		t.Errorf("the stream after an old row: %v", ps)
	}
	if c := counts(t, s, "u1"); c != recount(t, s, "u1") || c != (event.Counts{Total: 4, Unread: 1, Unseen: 1}) {
		t.Errorf("counts %+v, recount %+v", c, recount(t, s, "u1"))
	}

	// Down: the stream's state goes, the rows and marks stay.
	if err := m.UpTo(8); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM pg_class WHERE relname = 'inbox_changes'`); n != 0 {
		t.Error("inbox_changes left after down")
	}
	if n := count(t, s, `SELECT count(*) FROM information_schema.columns
		WHERE table_name = 'inbox_states' AND column_name IN ('head', 'floor', 'counts_seq')`); n != 1 {
		t.Errorf("inbox_states has %d of head, floor and counts_seq; want counts_seq only", n)
	}
	if n := count(t, s, `SELECT count(*) FROM inbox_states WHERE counts_epoch <> -1`); n != 0 {
		t.Errorf("%d state rows keep cached counts after down", n)
	}
	if n := count(t, s, `SELECT count(*) FROM notifications`); n != 6 {
		t.Errorf("%d rows after down, want 6", n)
	}
	if n := count(t, s, `SELECT count(*) FROM notification_marks WHERE is_read`); n != 1 {
		t.Errorf("%d read marks after down, want 1", n)
	}

	// Up again: the stream starts above the newest row again.
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	if h := streamPos(t, s, "u1"); h != u1wm+1 {
		t.Errorf("u1's head after up again: %d, want its newest row's %d", h, u1wm+1)
	}
	if c := counts(t, s, "u1"); c != recount(t, s, "u1") || c.Total != 4 {
		t.Errorf("counts after up again %+v, recount %+v", c, recount(t, s, "u1"))
	}
	if next := inboxOf(t, s, "u1", 200, 1, nil); next[0].Seq != u1wm+2 {
		t.Errorf("the next row after up again is at %d, want %d", next[0].Seq, u1wm+2)
	}
}

// Positions reach JavaScript clients as numbers: a database whose seqs or
// watermarks reach 2^52 is refused, and left as it was.
func TestMigration0009RefusesSeqsBeyondJavaScriptsExactIntegers(t *testing.T) {
	for _, tc := range []struct{ name, sql string }{
		{"a seq", `INSERT INTO notifications (id, seq, recipient_id, type, actor_id, actor, content, data, occurred_at, event_key)
			VALUES ($1, $2, 'u1', 'T', 'a', '{}', 'c', '{}', now(), '\x00')`},
		{"a watermark", `INSERT INTO inbox_states (recipient_id, read_wm) SELECT 'u1', $2 WHERE $1::uuid IS NOT NULL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, s := migratedTo8(t)
			id := event.NotificationID(event.Source{Topic: "t", Timestamp: time.Now()}, "u1")
			if _, err := s.Pool.Exec(context.Background(), tc.sql, id, int64(1)<<52); err != nil {
				t.Fatal(err)
			}
			err := m.Up()
			if err == nil || !strings.Contains(err.Error(), "2^52") {
				t.Fatalf("up = %v, want a refusal naming 2^52", err)
			}
			if n := count(t, s, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'inbox_states' AND column_name = 'head'`); n != 0 {
				t.Error("the refused migration changed inbox_states")
			}
		})
	}
}
