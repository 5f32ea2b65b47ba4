package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// openWriter starts a write transaction that inserts rows and stays open
// until the returned commit function is called.
func openWriter(t *testing.T, s *store.Store, rows []*event.Row) (xid int64, commit func()) {
	t.Helper()
	started := make(chan int64, 1)
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.InWriteTx(context.Background(), func(tx *store.Tx) error {
			if _, err := tx.InsertNotifications(context.Background(), rows); err != nil {
				started <- 0
				return err
			}
			started <- tx.Xid()
			<-release
			return nil
		})
	}()
	xid = <-started
	if xid == 0 {
		t.Fatal(<-done)
	}
	var once sync.Once
	commit = func() {
		once.Do(func() {
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Cleanup(commit)
	return xid, commit
}

func horizon(t *testing.T, s *store.Store) int64 {
	t.Helper()
	h, err := s.Horizon(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHorizonStopsAtTheOldestWriterStillInFlight(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ts := time.Now().UTC()
	src := func(off int64) event.Source { return event.Source{Topic: "t", Offset: off, Timestamp: ts} }

	older, commitOlder := openWriter(t, s, rowsFor(src(1), "u1"))
	newer, commitNewer := openWriter(t, s, rowsFor(src(2), "u1"))
	if newer <= older {
		t.Fatalf("transaction ids %d then %d", older, newer)
	}
	if h := horizon(t, s); h != older {
		t.Fatalf("horizon %d with writers %d and %d in flight, want %d", h, older, newer, older)
	}
	commitNewer() // a later writer ending first does not move the horizon
	if h := horizon(t, s); h != older {
		t.Fatalf("horizon %d after the newer writer ended, want %d (the older one is in flight)", h, older)
	}
	commitOlder()
	if h := horizon(t, s); h <= newer {
		t.Fatalf("horizon %d after both ended, want above %d", h, newer)
	}
}

func TestHorizonIgnoresTransactionsThatWriteNoNotifications(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	other, _ := pgtest.Open(t) // another database on the same server
	ctx := context.Background()

	// A long transaction of another kind (it has an id), and a writer in
	// another database: neither may hold the horizon back.
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var foreign int64
	if err := tx.QueryRow(ctx, `INSERT INTO memberships (scope, scope_id, recipient_id) VALUES ('org', 'o', 'u') RETURNING pg_current_xact_id()::text::bigint`).Scan(&foreign); err != nil {
		t.Fatal(err)
	}
	elsewhere, _ := openWriter(t, other, rowsFor(event.Source{Topic: "t", Timestamp: time.Now()}, "u1"))
	if h := horizon(t, s); h <= foreign || h <= elsewhere {
		t.Fatalf("horizon %d is held back by a transaction that writes no notification here (%d, %d)", h, foreign, elsewhere)
	}
}

// Issue 14: writers commit out of order (a later transaction first) while a
// reader follows "rows after my cursor, below the horizon" in a loop, as
// WebSocket replay and live pushes do. The reader sees every row exactly
// once. (Reading without the horizon bound skips rows here within a few
// runs: checked by hand with below = math.MaxInt64.)
func TestAReaderBelowTheHorizonNeverSkipsARowCommittedLate(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	const writers, batches = 4, 25
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				off := int64(w*1000 + b*10)
				ts := time.Now().UTC()
				var rows []*event.Row
				for i := int64(0); i < 3; i++ {
					rows = append(rows, rowsFor(event.Source{Topic: "t", Partition: int32(w), Offset: off + i, Timestamp: ts}, "u1")...)
				}
				err := s.InWriteTx(ctx, func(tx *store.Tx) error {
					if _, err := tx.InsertNotifications(ctx, rows); err != nil {
						return err
					}
					time.Sleep(time.Duration(rand.IntN(8)) * time.Millisecond) // commit late, at random
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()

	seen := map[int64]int{}
	var cursor int64
	read := func() {
		below := store.SeqOf(horizon(t, s), 0)
		rows, err := s.Pool.Query(ctx, `SELECT seq FROM notifications WHERE recipient_id = 'u1' AND seq > $1 AND seq < $2 ORDER BY seq`, cursor, below)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				t.Fatal(err)
			}
			seen[seq]++
			cursor = seq
		}
	}
	for done := false; !done; {
		select {
		case <-finished:
			done = true
		default:
		}
		read()
	}
	read()
	total := writers * batches * 3
	if n := testCount(t, s); n != total {
		t.Fatalf("%d rows stored, want %d", n, total)
	}
	for seq, n := range seen {
		if n != 1 {
			t.Errorf("seq %d read %d times", seq, n)
		}
	}
	if len(seen) != total {
		t.Errorf("the reader saw %d of %d rows: a row committed late was skipped", len(seen), total)
	}
}

func TestSeqIsTheTransactionIdThenTheRank(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	ts := time.Now().UTC()
	var xid int64
	a := rowsFor(event.Source{Topic: "t", Offset: 1, Timestamp: ts}, "u1", "u2")
	b := rowsFor(event.Source{Topic: "t", Offset: 2, Timestamp: ts}, "u1")
	err := s.InWriteTx(ctx, func(tx *store.Tx) error {
		xid = tx.Xid()
		if _, err := tx.InsertNotifications(ctx, a); err != nil {
			return err
		}
		_, err := tx.InsertNotifications(ctx, b) // a second call continues the ranks
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range append(a, b...) {
		if want := store.SeqOf(xid, int64(i)); r.Seq != want {
			t.Errorf("row %d: seq %d, want %d", i, r.Seq, want)
		}
	}
	if err := s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.InsertNotifications(ctx, rowsFor(event.Source{Topic: "t", Offset: 3, Timestamp: ts}, "u1"))
		return err
	}); err == nil {
		t.Error("an insert outside a write transaction must be refused")
	}
	if store.SeqOf(math.MaxInt64>>store.SeqShift, store.MaxRowsPerTx-1) < 0 {
		t.Error("seq overflows")
	}
}

func testCount(t *testing.T, s *store.Store) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM notifications`).Scan(&n); err != nil {
		t.Fatal(fmt.Errorf("count: %w", err))
	}
	return n
}

// A tick is one transaction: the horizon it sends is below its own id, and
// listeners get it after the notifications of the writers it passed. A
// writer's own horizon, sent with its commit, passes itself but no older
// writer still in flight.
func TestTicksAndCommitHorizonsReachListeners(t *testing.T) {
	t.Parallel()
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	conn, err := s.Listen(ctx, "test_ticks")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	type marker struct {
		H, X, K, TP int64
		W           []int64
	}
	next := func() marker {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		n, err := conn.WaitForNotification(wctx)
		if err != nil {
			t.Fatal(err)
		}
		var m marker
		if err := json.Unmarshal([]byte(n.Payload), &m); err != nil {
			t.Fatalf("payload %q: %v", n.Payload, err)
		}
		return m
	}

	h, x, err := s.Tick(ctx, "test_ticks", `{"k":1,`)
	if err != nil {
		t.Fatal(err)
	}
	if got := next(); got.H != h || got.X != x || h > x || got.K != 1 {
		t.Fatalf("tick sent %v, returned h=%d x=%d", got, h, x)
	}

	ts := time.Now().UTC()
	older, commitOlder := openWriter(t, s, rowsFor(event.Source{Topic: "t", Offset: 1, Timestamp: ts}, "u1"))
	var mine int64
	commitWith := func(off int64) {
		t.Helper()
		err := s.InWriteTx(ctx, func(tx *store.Tx) error {
			mine = tx.Xid()
			if _, err := tx.InsertNotifications(ctx, rowsFor(event.Source{Topic: "t", Offset: off, Timestamp: ts}, "u1")); err != nil {
				return err
			}
			return tx.NotifyHorizon(ctx, "test_ticks", `{`)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	commitWith(2)
	// The marker names the writers it waited for, so that a listener that
	// hears them commit can pass them without a tick.
	if got := next(); got.H != older || got.X != mine || got.TP <= mine || !slices.Equal(got.W, []int64{older}) {
		t.Fatalf("with writer %d in flight, writer %d sent %+v: want h=%d, w=[%d], tp past itself", older, mine, got, older, older)
	}
	commitOlder()
	commitWith(3)
	if got := next(); got.H != mine+1 || got.TP != got.H || len(got.W) != 0 {
		t.Fatalf("alone, writer %d sent %+v: want h=%d, no writers", mine, got, mine+1)
	}
}
