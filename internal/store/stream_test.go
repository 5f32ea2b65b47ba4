package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// errRolledBack ends a transaction of openTx that the test rolls back.
var errRolledBack = errors.New("rolled back by the test")

// openTx runs fn in a transaction that stays open until the returned end
// function is called (commit or roll back); at the test's end it is rolled
// back if still open.
func openTx(t *testing.T, s *store.Store, fn func(ctx context.Context, tx *store.Tx) error) (end func(commit bool)) {
	t.Helper()
	ctx := context.Background()
	ready := make(chan error, 1)
	release := make(chan bool, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.InTx(ctx, func(tx *store.Tx) error {
			if err := fn(ctx, tx); err != nil {
				ready <- err
				return err
			}
			ready <- nil
			if !<-release {
				return errRolledBack
			}
			return nil
		})
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	end = func(commit bool) {
		once.Do(func() {
			release <- commit
			err := <-done
			if commit && err != nil {
				t.Errorf("commit: %v", err)
			}
			if !commit && !errors.Is(err, errRolledBack) {
				t.Errorf("rollback: %v", err)
			}
		})
	}
	t.Cleanup(func() { end(false) })
	return end
}

// openWriter inserts rows in a transaction that stays open (openTx).
func openWriter(t *testing.T, s *store.Store, rows []*event.Row) (end func(commit bool)) {
	t.Helper()
	ensurePartitions(t, s, rows)
	return openTx(t, s, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.InsertNotifications(ctx, rows)
		return err
	})
}

func ensurePartitions(t *testing.T, s *store.Store, rows []*event.Row) {
	t.Helper()
	var times []time.Time
	for _, r := range rows {
		times = append(times, r.Source.Timestamp)
	}
	if err := s.EnsurePartitions(context.Background(), times); err != nil {
		t.Fatal(err)
	}
}

// waitBlocked waits until a session of s's database waits for a lock. It
// fails the test when returned is closed first: the call that should wait
// for a lock returned without.
func waitBlocked(t *testing.T, s *store.Store, returned <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-returned:
			t.Fatal("returned while a writer held the recipient's state row: it did not wait for it")
		default:
		}
		if count(t, s, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no session waits for a lock after 20s")
}

// positions returns the recipient's positions: of its notifications and
// of its other changes (inbox_changes), ascending.
func positions(t *testing.T, s *store.Store, recipient string) (rows, changes []int64) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []struct {
		sql string
		out *[]int64
	}{
		{`SELECT seq FROM notifications WHERE recipient_id = $1 ORDER BY seq`, &rows},
		{`SELECT pos FROM inbox_changes WHERE recipient_id = $1 ORDER BY pos`, &changes},
	} {
		r, err := s.Pool.Query(ctx, q.sql, recipient)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var p int64
			if err := r.Scan(&p); err != nil {
				t.Fatal(err)
			}
			*q.out = append(*q.out, p)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return rows, changes
}

// checkDense fails the test unless the recipient's changes hold exactly
// the positions 1…head, each once, head being its state row's.
func checkDense(t *testing.T, s *store.Store, recipient string) int64 {
	t.Helper()
	rows, changes := positions(t, s, recipient)
	all := append(slices.Clone(rows), changes...)
	slices.Sort(all)
	head := streamPos(t, s, recipient)
	for i, p := range all {
		if p != int64(i+1) {
			t.Fatalf("%s: positions %v (rows %v, changes %v), want 1…%d each once", recipient, all, rows, changes, len(all))
		}
	}
	if head != int64(len(all)) {
		t.Fatalf("%s: head %d, with %d changes stored", recipient, head, len(all))
	}
	return head
}

func streamPos(t *testing.T, s *store.Store, recipient string) int64 {
	t.Helper()
	p, err := s.StreamPos(context.Background(), recipient)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPositionsAreDensePerRecipientAcrossChunksAndTransactions(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	ts := time.Now().UTC()
	src := func(off int64) event.Source { return event.Source{Topic: "t", Offset: off, Timestamp: ts} }
	// One transaction, two chunks; rows of one recipient apart in a chunk.
	a := append(rowsFor(src(1), "u1", "u2"), rowsFor(src(2), "u3", "u1")...)
	b := rowsFor(src(3), "u2", "u1")
	ensurePartitions(t, s, a)
	err := s.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.InsertNotifications(ctx, a); err != nil {
			return err
		}
		_, err := tx.InsertNotifications(ctx, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Another transaction continues each stream.
	c := rowsFor(src(4), "u3", "u1")
	insert(t, s, c)
	want := []struct {
		row *event.Row
		pos int64
	}{{a[0], 1}, {a[1], 1}, {a[2], 1}, {a[3], 2}, {b[0], 2}, {b[1], 3}, {c[0], 2}, {c[1], 4}}
	for i, w := range want {
		if w.row.Seq != w.pos {
			t.Errorf("row %d (%s): position %d, want %d", i, w.row.RecipientID, w.row.Seq, w.pos)
		}
		// Every row is unread and unseen: its counts are its position.
		if c := w.row.Counts; c == nil || *c != (event.Counts{Total: w.pos, Unread: w.pos, Unseen: w.pos}) {
			t.Errorf("row %d (%s at %d): counts %v", i, w.row.RecipientID, w.pos, c)
		}
	}
	for _, r := range []string{"u1", "u2", "u3"} {
		checkDense(t, s, r)
		if got, want := counts(t, s, r), recount(t, s, r); got != want {
			t.Errorf("%s: counts %+v, recount %+v", r, got, want)
		}
	}
	// The stored rows are at the positions the inserts returned.
	for _, r := range append(append(a, b...), c...) {
		if p, err := s.PositionOf(ctx, r.RecipientID, r.ID); err != nil || p != r.Seq {
			t.Errorf("PositionOf %s = %d, %v; want %d", r.ID, p, err, r.Seq)
		}
	}
	if _, err := s.PositionOf(ctx, "u2", a[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PositionOf another recipient's notification: %v, want ErrNotFound", err)
	}
	if err := s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.InsertNotifications(ctx, make([]*event.Row, store.MaxRowsPerTx+1))
		return err
	}); err == nil {
		t.Error("an insert of more than MaxRowsPerTx rows must be refused")
	}
}

// Writers in transactions of their own (ingest's chunks and state
// changes) write changes for overlapping recipients at once, committing
// at random moments. Each transaction's last statement takes the next
// number of a one-row counter, so the numbers are the commit order. Every
// recipient's changes must hold the positions 1…n, in commit order.
// (Positions taken from an unlocked read of the head fail this within a
// run: checked by hand.)
func TestConcurrentWritersTakeDensePositionsInCommitOrder(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	if _, err := s.Pool.Exec(ctx, `CREATE TABLE test_commits (n bigint NOT NULL); INSERT INTO test_commits VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsurePartitions(ctx, []time.Time{time.Now()}); err != nil {
		t.Fatal(err)
	}
	commitRank := func(ctx context.Context, tx *store.Tx) (int64, error) {
		var n int64
		err := tx.Raw().QueryRow(ctx, `UPDATE test_commits SET n = n + 1 RETURNING n`).Scan(&n)
		return n, err
	}
	recipients := []string{"u1", "u2", "u3", "u4"}
	type change struct {
		recipient string
		pos, rank int64
	}
	var mu sync.Mutex
	var log []change
	record := func(rank int64, cs ...change) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			c.rank = rank
			log = append(log, c)
		}
	}

	const writers, txs = 3, 30
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for i := range txs {
				// A chunk of 1–4 records, each for a random subset of
				// recipients (a recipient may have several rows).
				var rows []*event.Row
				for r := range 1 + rng.IntN(4) {
					var to []string
					for _, rc := range recipients {
						if rng.IntN(2) == 0 {
							to = append(to, rc)
						}
					}
					if len(to) == 0 {
						to = recipients[:1]
					}
					rows = append(rows, rowsFor(event.Source{Topic: "t", Partition: int32(w), Offset: int64(i*10 + r), Timestamp: time.Now()}, to...)...)
				}
				var rank int64
				err := s.InTx(ctx, func(tx *store.Tx) error {
					if _, err := tx.InsertNotifications(ctx, rows); err != nil {
						return err
					}
					time.Sleep(time.Duration(rng.IntN(4)) * time.Millisecond) // commit late, at random
					var err error
					rank, err = commitRank(ctx, tx)
					return err
				})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				var cs []change
				for _, r := range rows {
					cs = append(cs, change{recipient: r.RecipientID, pos: r.Seq})
				}
				record(rank, cs...)
			}
		}()
	}
	// State changes meanwhile, each in its transaction, staged: the stager
	// runs last in it and takes the commit number.
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(99, 9))
		for range 40 {
			r := recipients[rng.IntN(len(recipients))]
			var ids []uuid.UUID
			if err := s.Pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}') FROM notifications WHERE recipient_id = $1`, r).Scan(&ids); err != nil {
				t.Error(err)
				return
			}
			var rank int64
			var pushed []event.Push
			stage := func(ctx context.Context, tx *store.Tx, pushes []event.Push) (func(bool), error) {
				time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
				var err error
				rank, err = commitRank(ctx, tx)
				pushed = pushes
				return func(bool) {}, err
			}
			var ch event.Change
			var err error
			switch op := []event.Op{event.OpRead, event.OpSeen, event.OpArchive, event.OpUnread}[rng.IntN(4)]; {
			case len(ids) == 0:
				continue
			case rng.IntN(6) == 0:
				ch, err = s.MarkAll(ctx, r, []event.Op{event.OpRead, event.OpSeen}[rng.IntN(2)], stage)
			default:
				ch, err = s.Mark(ctx, r, op, []uuid.UUID{ids[rng.IntN(len(ids))]}, stage)
			}
			if err != nil {
				t.Error(err)
				return
			}
			if ch.Updated > 0 {
				if len(pushed) != 1 || pushed[0].Pos != ch.Pos {
					t.Errorf("change at %d staged %v", ch.Pos, pushed)
				}
				record(rank, change{recipient: r, pos: ch.Pos})
			}
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}

	byRecipient := map[string][]change{}
	for _, c := range log {
		byRecipient[c.recipient] = append(byRecipient[c.recipient], c)
	}
	for _, r := range recipients {
		cs := byRecipient[r]
		sort.Slice(cs, func(i, j int) bool { return cs[i].pos < cs[j].pos })
		for i, c := range cs {
			if c.pos != int64(i+1) {
				t.Fatalf("%s: the writers got positions %v, want 1…%d", r, cs, len(cs))
			}
			if i > 0 && c.rank < cs[i-1].rank {
				t.Errorf("%s: position %d committed %d-th, before position %d (%d-th)", r, c.pos, c.rank, cs[i-1].pos, cs[i-1].rank)
			}
		}
		if head := checkDense(t, s, r); head != int64(len(cs)) {
			t.Errorf("%s: head %d, %d changes written", r, head, len(cs))
		}
		if got, want := counts(t, s, r), recount(t, s, r); got != want {
			t.Errorf("%s: counts %+v, recount %+v", r, got, want)
		}
	}
}

// A redelivered chunk (rows stored already) takes no position, and one
// redelivered in part positions only its new rows: the savepoint gives the
// positions taken for the failed COPY back.
func TestARedeliveredChunkTakesNoPosition(t *testing.T) {
	s, _ := pgtest.Open(t)
	ts := time.Now().UTC()
	src := func(off int64) event.Source { return event.Source{Topic: "t", Offset: off, Timestamp: ts} }
	first := append(rowsFor(src(1), "u1", "u2"), rowsFor(src(2), "u1")...)
	if n := insert(t, s, first); n != 3 {
		t.Fatalf("stored %d", n)
	}
	again := append(rowsFor(src(1), "u1", "u2"), rowsFor(src(2), "u1")...)
	if n := insert(t, s, again); n != 0 {
		t.Fatalf("a redelivered chunk stored %d rows", n)
	}
	for _, r := range again {
		if r.Seq != 0 || r.Counts != nil {
			t.Errorf("a row stored before got position %d, counts %v", r.Seq, r.Counts)
		}
	}
	if h1, h2 := streamPos(t, s, "u1"), streamPos(t, s, "u2"); h1 != 2 || h2 != 1 {
		t.Fatalf("heads after the redelivery: u1 %d, u2 %d; want 2, 1", h1, h2)
	}
	// In part: two old records around new ones.
	part := append(append(rowsFor(src(1), "u1", "u2"), rowsFor(src(3), "u2", "u1")...), rowsFor(src(2), "u1")...)
	part = append(part, rowsFor(src(4), "u1")...)
	if n := insert(t, s, part); n != 3 {
		t.Fatalf("a partly redelivered chunk stored %d rows, want its 3 new ones", n)
	}
	for i, want := range []int64{0, 0, 2, 3, 0, 4} {
		if part[i].Seq != want {
			t.Errorf("row %d (%s): position %d, want %d", i, part[i].RecipientID, part[i].Seq, want)
		}
	}
	if c := part[5].Counts; c == nil || *c != (event.Counts{Total: 4, Unread: 4, Unseen: 4}) {
		t.Errorf("the last new row's counts %v, want 4 of each", c)
	}
	insert(t, s, rowsFor(src(5), "u1", "u2")) // and the streams go on
	for _, r := range []string{"u1", "u2"} {
		checkDense(t, s, r)
		if got, want := counts(t, s, r), recount(t, s, r); got != want {
			t.Errorf("%s: counts %+v, recount %+v", r, got, want)
		}
	}
}

// Two instances on one record (a rebalance): the second transaction waits
// for the first's state rows, then finds the rows stored and positions
// only what is new. Neither leaves a hole, whether the first commits or
// rolls back.
func TestTwoTransactionsInsertingTheSameRowsLeaveNoHole(t *testing.T) {
	for _, commit := range []bool{true, false} {
		t.Run(fmt.Sprintf("the first commits: %v", commit), func(t *testing.T) {
			s, _ := pgtest.Open(t)
			ctx := context.Background()
			ts := time.Now().UTC()
			src := func(off int64) event.Source { return event.Source{Topic: "t", Offset: off, Timestamp: ts} }
			insert(t, s, rowsFor(src(0), "u1"))
			end := openWriter(t, s, append(rowsFor(src(1), "u1", "u2"), rowsFor(src(2), "u1")...))
			second := append(append(rowsFor(src(1), "u1", "u2"), rowsFor(src(2), "u1")...), rowsFor(src(3), "u1", "u2")...)
			type result struct {
				n   int
				err error
			}
			done := make(chan result, 1)
			returned := make(chan struct{})
			go func() {
				defer close(returned)
				var n int
				err := s.InTx(ctx, func(tx *store.Tx) error {
					var err error
					n, err = tx.InsertNotifications(ctx, second)
					return err
				})
				done <- result{n, err}
			}()
			waitBlocked(t, s, returned)
			end(commit)
			res := <-done
			if res.err != nil {
				t.Fatal(res.err)
			}
			wantN, want := 2, []int64{0, 0, 0, 4, 2}
			if !commit {
				wantN, want = 5, []int64{2, 1, 3, 4, 2}
			}
			if res.n != wantN {
				t.Errorf("the second stored %d rows, want %d", res.n, wantN)
			}
			for i, r := range second {
				if r.Seq != want[i] {
					t.Errorf("row %d (%s): position %d, want %d", i, r.RecipientID, r.Seq, want[i])
				}
			}
			for _, r := range []string{"u1", "u2"} {
				checkDense(t, s, r)
				if got, want := counts(t, s, r), recount(t, s, r); got != want {
					t.Errorf("%s: counts %+v, recount %+v", r, got, want)
				}
			}
		})
	}
}

// Heads locks each state row (FOR SHARE): it waits for a writer in flight
// on the recipient and returns a head that covers that writer's rows —
// also when the writer creates the recipient's state row.
func TestHeadsWaitsForAWriterInFlightAndCoversItsRows(t *testing.T) {
	for _, tc := range []struct {
		name   string
		commit bool
		target string // the recipient the writer writes for
		before int    // its rows committed before
	}{
		{"a recipient with a state row, the writer commits", true, "u1", 2},
		{"a recipient with a state row, the writer rolls back", false, "u1", 2},
		{"the writer creates the recipient's state row", true, "u9", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := pgtest.Open(t)
			ctx := context.Background()
			if tc.before > 0 {
				inboxOf(t, s, tc.target, 0, tc.before, nil)
			}
			ts := time.Now().UTC()
			var rows []*event.Row
			for i := range 3 {
				rows = append(rows, rowsFor(event.Source{Topic: "t", Offset: int64(100 + i), Timestamp: ts}, tc.target, "w")...)
			}
			end := openWriter(t, s, rows)
			var heads map[string]store.Head
			var err error
			returned := make(chan struct{})
			go func() {
				defer close(returned)
				heads, err = s.Heads(ctx, []string{"u3", tc.target})
			}()
			waitBlocked(t, s, returned)
			end(tc.commit)
			<-returned
			if err != nil {
				t.Fatal(err)
			}
			want := int64(tc.before)
			if tc.commit {
				want += 3
			}
			h := heads[tc.target]
			if h.Pos != want || h.Floor != 0 || h.Counts == nil || *h.Counts != (event.Counts{Total: want, Unread: want, Unseen: want}) {
				t.Errorf("head %+v (counts %v), want %d with its counts", h, h.Counts, want)
			}
			if u3 := heads["u3"]; u3.Pos != 0 || u3.Counts == nil || *u3.Counts != (event.Counts{}) {
				t.Errorf("a recipient without changes: %+v", u3)
			}
		})
	}
}

// Heads creates the state rows it lacks, with counts that are valid (zero:
// a row created by Heads holds no notification), so that later changes
// count from them; counts that retention made stale come back as unknown.
func TestHeadsCreatesMissingStateRowsWithValidZeroCounts(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	inboxOf(t, s, "u1", 0, 2, nil)
	heads, err := s.Heads(ctx, []string{"u5", "u1", "u5", "u6"})
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 3 {
		t.Errorf("heads %v, want one per recipient", heads)
	}
	for _, r := range []string{"u5", "u6"} {
		if h := heads[r]; h.Pos != 0 || h.Counts == nil || *h.Counts != (event.Counts{}) {
			t.Errorf("%s: %+v", r, h)
		}
	}
	if h := heads["u1"]; h.Pos != 2 || h.Counts == nil || *h.Counts != (event.Counts{Total: 2, Unread: 2, Unseen: 2}) {
		t.Errorf("u1: %+v", h)
	}
	if n := count(t, s, `SELECT count(*) FROM inbox_states WHERE recipient_id IN ('u5', 'u6')
		AND counts_epoch = (SELECT epoch FROM inbox_epoch) AND head = 0 AND total = 0`); n != 2 {
		t.Errorf("%d state rows created valid, want 2", n)
	}
	// Counts then need no recount, and ingest counts on from zero.
	rows := inboxOf(t, s, "u5", 10, 2, nil)
	if c := rows[1].Counts; c == nil || *c != (event.Counts{Total: 2, Unread: 2, Unseen: 2}) {
		t.Errorf("u5's second row has counts %v", c)
	}
	// Retention moves the epoch: Heads says the counts are not known.
	if _, err := s.Pool.Exec(ctx, `UPDATE inbox_epoch SET epoch = epoch + 1`); err != nil {
		t.Fatal(err)
	}
	heads, err = s.Heads(ctx, []string{"u1", "u7"})
	if err != nil {
		t.Fatal(err)
	}
	if h := heads["u1"]; h.Pos != 2 || h.Counts != nil {
		t.Errorf("u1 after a new epoch: %+v, want its head without counts", h)
	}
	if h := heads["u7"]; h.Counts == nil || *h.Counts != (event.Counts{}) {
		t.Errorf("a row created in the new epoch: %+v, want valid zero counts", h)
	}
}

// PeekHeads reads without locking or creating anything: a writer in
// flight does not hold it up.
func TestPeekHeadsDoesNotLock(t *testing.T) {
	s, _ := pgtest.Open(t)
	inboxOf(t, s, "u1", 0, 2, nil)
	end := openWriter(t, s, rowsFor(event.Source{Topic: "t", Offset: 50, Timestamp: time.Now()}, "u1", "u8"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	heads, err := s.PeekHeads(ctx, []string{"u1", "u7", "u8"})
	if err != nil {
		t.Fatalf("PeekHeads while a writer is in flight: %v", err)
	}
	if len(heads) != 1 || heads["u1"] != 2 {
		t.Errorf("heads %v, want u1 at its committed head 2 only", heads)
	}
	end(true)
	if n := count(t, s, `SELECT count(*) FROM inbox_states WHERE recipient_id = 'u7'`); n != 0 {
		t.Error("PeekHeads created a state row")
	}
	if heads, err := s.PeekHeads(context.Background(), []string{"u1", "u8"}); err != nil || heads["u1"] != 3 || heads["u8"] != 1 {
		t.Errorf("after the commit: %v, %v", heads, err)
	}
}

// stager records what changes staged and how they settled.
type stager struct {
	mu      sync.Mutex
	pushes  []event.Push
	settled []bool
	calls   int
	failAt  int // the call that fails (1-based); 0: none
}

func (st *stager) stage(_ context.Context, _ *store.Tx, pushes []event.Push) (func(bool), error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.calls++; st.calls == st.failAt {
		return nil, errors.New("stage failed on purpose")
	}
	st.pushes = append(st.pushes, pushes...)
	return func(committed bool) {
		st.mu.Lock()
		defer st.mu.Unlock()
		st.settled = append(st.settled, committed)
	}, nil
}

// frame is a stream frame, decoded.
type frame struct {
	Topic  string          `json:"topic"`
	Room   string          `json:"room"`
	Pos    int64           `json:"pos"`
	Counts *event.Counts   `json:"counts"`
	Data   json.RawMessage `json:"data"`
}

func decodeFrame(t *testing.T, b []byte) frame {
	t.Helper()
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return f
}

func streamAfter(t *testing.T, s *store.Store, recipient string, pos int64, limit int) (event.StreamPage, []int64) {
	t.Helper()
	page, err := s.StreamAfter(context.Background(), recipient, pos, limit)
	if err != nil {
		t.Fatal(err)
	}
	var ps []int64
	for _, c := range page.Changes {
		ps = append(ps, c.Pos)
		if f := decodeFrame(t, c.Frame); f.Pos != c.Pos || f.Room != event.NotificationRoom(recipient) {
			t.Errorf("change at %d has a frame at %d in %s", c.Pos, f.Pos, f.Room)
		}
	}
	return page, ps
}

func TestStreamAfterMergesCreatedAndStateChangesInPositionOrder(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	st := &stager{}
	rows := inboxOf(t, s, "u1", 0, 3, nil)                                                        // 1, 2, 3
	inboxOf(t, s, "u2", 50, 2, nil)                                                               // another stream
	if _, err := s.Mark(ctx, "u1", event.OpRead, []uuid.UUID{rows[1].ID}, st.stage); err != nil { // 4
		t.Fatal(err)
	}
	more := inboxOf(t, s, "u1", 10, 1, nil)                                                         // 5
	if _, err := s.Mark(ctx, "u1", event.OpDelete, []uuid.UUID{rows[0].ID}, st.stage); err != nil { // 6
		t.Fatal(err)
	}
	if _, err := s.MarkAll(ctx, "u1", event.OpSeen, st.stage); err != nil { // 7
		t.Fatal(err)
	}
	if len(st.pushes) != 3 {
		t.Fatalf("staged %d pushes, want 3", len(st.pushes))
	}

	page, ps := streamAfter(t, s, "u1", 0, 100)
	if !slices.Equal(ps, []int64{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("positions %v, want 1…7", ps)
	}
	c, pos, err := s.Counts(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if page.Head.Pos != 7 || pos != 7 || page.Head.Counts == nil || *page.Head.Counts != c {
		t.Errorf("head %+v (counts %v), want 7 with %+v", page.Head, page.Head.Counts, c)
	}
	created := func(i int, r *event.Row, read bool) {
		t.Helper()
		f := decodeFrame(t, page.Changes[i].Frame)
		var d struct {
			ID     uuid.UUID `json:"id"`
			IsRead bool      `json:"isRead"`
		}
		if err := json.Unmarshal(f.Data, &d); err != nil || f.Topic != event.TopicNotificationCreated || d.ID != r.ID || d.IsRead != read || f.Counts != nil {
			t.Errorf("change %d: %s, want %s created with isRead %v, no counts", f.Pos, page.Changes[i].Frame, r.ID, read)
		}
	}
	// Deleted since: a removed frame stands in for its created change.
	if f := decodeFrame(t, page.Changes[0].Frame); f.Topic != event.TopicNotificationRemoved ||
		string(f.Data) != fmt.Sprintf(`{"ids":[%q],"reason":"deleted"}`, rows[0].ID) {
		t.Errorf("change 1: %s, want %s removed", page.Changes[0].Frame, rows[0].ID)
	}
	created(1, rows[1], true) // with its state as it is now
	created(2, rows[2], false)
	created(4, more[0], false)
	// State changes: byte for byte what was pushed.
	for i, at := range []int{3, 5, 6} {
		if !bytes.Equal(page.Changes[at].Frame, st.pushes[i].Frame) {
			t.Errorf("change %d reads\n%s\nwas pushed as\n%s", page.Changes[at].Pos, page.Changes[at].Frame, st.pushes[i].Frame)
		}
	}

	for _, tc := range []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 3, []int64{1, 2, 3}},
		{3, 2, []int64{4, 5}},
		{4, 1, []int64{5}},
		{5, 10, []int64{6, 7}},
		{7, 10, nil},
		{9, 10, nil},
		{2, 0, nil},
	} {
		if page, ps := streamAfter(t, s, "u1", tc.after, tc.limit); !slices.Equal(ps, tc.want) || page.Head.Pos != 7 {
			t.Errorf("after %d, limit %d: %v at head %d, want %v at 7", tc.after, tc.limit, ps, page.Head.Pos, tc.want)
		}
	}
	if page, ps := streamAfter(t, s, "u2", 0, 10); !slices.Equal(ps, []int64{1, 2}) || page.Head.Pos != 2 {
		t.Errorf("u2: %v at %d", ps, page.Head.Pos)
	}
	if page, ps := streamAfter(t, s, "nobody", 0, 10); len(ps) != 0 || page.Head != (store.Head{}) {
		t.Errorf("a recipient without changes: %v, %+v", ps, page.Head)
	}

	// Nothing beyond the head it read: changes that commit after that read
	// (here: a head set back, with a notification at 5 and state changes
	// at 6 and 7 stored above it) are left for the next page.
	if _, err := s.Pool.Exec(ctx, `UPDATE inbox_states SET head = 4 WHERE recipient_id = 'u1'`); err != nil {
		t.Fatal(err)
	}
	if page, ps := streamAfter(t, s, "u1", 0, 100); !slices.Equal(ps, []int64{1, 2, 3, 4}) || page.Head.Pos != 4 {
		t.Errorf("with head 4: %v at %d, want 1…4", ps, page.Head.Pos)
	}
	if _, ps := streamAfter(t, s, "u1", 3, 100); !slices.Equal(ps, []int64{4}) {
		t.Errorf("with head 4, after 3: %v, want 4", ps)
	}
}

// Every state change that changes something takes exactly one position,
// is recorded in inbox_changes as the frame it stages inside its
// transaction (before the commit: nothing of it is visible yet), settles
// once committed, and answers the counts GET /notifications/counts gives
// afterwards.
func TestEveryStateChangeTakesOnePositionAndIsStagedInItsTransaction(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	rows := inboxOf(t, s, "u1", 0, 5, nil)
	id := func(i int) []uuid.UUID { return []uuid.UUID{rows[i].ID} }
	steps := []struct {
		name string
		do   func(store.Stager) (event.Change, error)
	}{
		{"read one", func(st store.Stager) (event.Change, error) { return s.Mark(ctx, "u1", event.OpRead, id(0), st) }},
		{"seen two", func(st store.Stager) (event.Change, error) {
			return s.Mark(ctx, "u1", event.OpSeen, append(id(1), rows[2].ID), st)
		}},
		{"unread", func(st store.Stager) (event.Change, error) { return s.Mark(ctx, "u1", event.OpUnread, id(0), st) }},
		{"archive", func(st store.Stager) (event.Change, error) { return s.Mark(ctx, "u1", event.OpArchive, id(1), st) }},
		{"unarchive", func(st store.Stager) (event.Change, error) { return s.Mark(ctx, "u1", event.OpUnarchive, id(1), st) }},
		{"delete", func(st store.Stager) (event.Change, error) { return s.Mark(ctx, "u1", event.OpDelete, id(3), st) }},
		{"seen all", func(st store.Stager) (event.Change, error) { return s.MarkAll(ctx, "u1", event.OpSeen, st) }},
		{"read all", func(st store.Stager) (event.Change, error) { return s.MarkAll(ctx, "u1", event.OpRead, st) }},
		{"delete all", func(st store.Stager) (event.Change, error) { return s.MarkAll(ctx, "u1", event.OpDelete, st) }},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			before := streamPos(t, s, "u1")
			var calls int
			var pushed event.Push
			var settled []bool
			stage := func(_ context.Context, _ *store.Tx, pushes []event.Push) (func(bool), error) {
				calls++
				if len(pushes) != 1 {
					t.Errorf("staged %d pushes", len(pushes))
				} else {
					pushed = pushes[0]
				}
				// In the transaction: its change is not visible yet.
				if p := streamPos(t, s, "u1"); p != before {
					t.Errorf("staged at head %d: the change is visible before its commit", p)
				}
				if n := count(t, s, `SELECT count(*) FROM inbox_changes WHERE recipient_id = 'u1' AND pos > $1`, before); n != 0 {
					t.Errorf("%d changes visible before the commit", n)
				}
				return func(committed bool) {
					settled = append(settled, committed)
					if p := streamPos(t, s, "u1"); committed && p != before+1 {
						t.Errorf("settled at head %d: not after the commit", p)
					}
				}, nil
			}
			ch, err := step.do(stage)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Updated == 0 || ch.Pos != before+1 || streamPos(t, s, "u1") != before+1 {
				t.Errorf("change %+v at head %d, want one position after %d", ch, streamPos(t, s, "u1"), before)
			}
			if calls != 1 || !slices.Equal(settled, []bool{true}) {
				t.Errorf("staged %d times, settled %v; want once, committed", calls, settled)
			}
			c, pos, err := s.Counts(ctx, "u1")
			if err != nil || c != ch.Counts || pos != ch.Pos || c != recount(t, s, "u1") {
				t.Errorf("the change answered %+v at %d; GET counts gives %+v at %d (%v), a recount %+v", ch.Counts, ch.Pos, c, pos, err, recount(t, s, "u1"))
			}
			var topic, data string
			var total, unread, unseen int64
			if err := s.Pool.QueryRow(ctx, `SELECT topic, data, total, unread, unseen FROM inbox_changes WHERE recipient_id = 'u1' AND pos = $1`, ch.Pos).
				Scan(&topic, &data, &total, &unread, &unseen); err != nil {
				t.Fatalf("the change at %d is not recorded: %v", ch.Pos, err)
			}
			want, _ := json.Marshal(ch.Frame())
			if topic != event.TopicNotificationUpdated || data != string(want) || (event.Counts{Total: total, Unread: unread, Unseen: unseen}) != ch.Counts {
				t.Errorf("recorded %s %s %d/%d/%d, want %s with %+v", topic, data, total, unread, unseen, want, ch.Counts)
			}
			frame, _ := event.MarshalChange(event.TopicNotificationUpdated, "u1", ch.Pos, &ch.Counts, ch.Frame())
			if pushed.Room != event.NotificationRoom("u1") || pushed.Pos != ch.Pos || !bytes.Equal(pushed.Frame, frame) {
				t.Errorf("staged %s at %d: %s, want %s", pushed.Room, pushed.Pos, pushed.Frame, frame)
			}
		})
	}
	t.Run("a change that changes nothing takes no position and stages nothing", func(t *testing.T) {
		rows := inboxOf(t, s, "u1", 100, 1, nil)
		mustMark(t, s, "u1", event.OpRead, rows[0].ID)
		before := streamPos(t, s, "u1")
		st := &stager{}
		for _, do := range []func() (event.Change, error){
			func() (event.Change, error) {
				return s.Mark(ctx, "u1", event.OpRead, []uuid.UUID{rows[0].ID}, st.stage)
			},
			func() (event.Change, error) {
				return s.Mark(ctx, "u1", event.OpRead, []uuid.UUID{uuid.New()}, st.stage)
			},
			func() (event.Change, error) { return s.MarkAll(ctx, "u1", event.OpRead, st.stage) },
			func() (event.Change, error) { return s.MarkAll(ctx, "u1", event.OpSeen, st.stage) },
		} {
			if ch, err := do(); err != nil || ch.Updated != 0 || ch.Pos != 0 {
				t.Errorf("%+v, %v", ch, err)
			}
		}
		if p := streamPos(t, s, "u1"); p != before || len(st.pushes) != 0 || len(st.settled) != 0 {
			t.Errorf("head %d (was %d), staged %v", p, before, st.pushes)
		}
		checkDense(t, s, "u1")
	})
}

// A state change whose stage fails, or whose transaction fails to commit
// after staging, changes nothing and takes no position; settle says it did
// not commit.
func TestAStateChangeThatDoesNotCommitLeavesNoTrace(t *testing.T) {
	s, _ := pgtest.Open(t)
	rows := inboxOf(t, s, "u1", 0, 3, nil)
	mustMark(t, s, "u1", event.OpRead, rows[0].ID)
	before, c0 := streamPos(t, s, "u1"), counts(t, s, "u1")
	unchanged := func(t *testing.T) {
		t.Helper()
		if p, c := streamPos(t, s, "u1"), counts(t, s, "u1"); p != before || c != c0 {
			t.Errorf("head %d, counts %+v; want %d, %+v", p, c, before, c0)
		}
		if st := statesOf(t, s, "u1", rows[1].ID); st != (event.States{}) {
			t.Errorf("states %+v", st)
		}
		if n := count(t, s, `SELECT count(*) FROM notification_marks WHERE id = $1`, rows[1].ID); n != 0 {
			t.Errorf("a mark was written")
		}
		checkDense(t, s, "u1")
	}
	t.Run("the stage fails", func(t *testing.T) {
		for _, all := range []bool{false, true} {
			st := &stager{failAt: 1}
			var err error
			if all {
				_, err = s.MarkAll(context.Background(), "u1", event.OpRead, st.stage)
			} else {
				_, err = s.Mark(context.Background(), "u1", event.OpRead, []uuid.UUID{rows[1].ID}, st.stage)
			}
			if err == nil {
				t.Fatal("no error")
			}
			unchanged(t)
		}
	})
	t.Run("the commit fails after the stage", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var settled []bool
		stage := func(context.Context, *store.Tx, []event.Push) (func(bool), error) {
			cancel() // the commit that follows fails
			return func(committed bool) { settled = append(settled, committed) }, nil
		}
		if _, err := s.Mark(ctx, "u1", event.OpRead, []uuid.UUID{rows[1].ID}, stage); err == nil {
			t.Fatal("no error")
		}
		if !slices.Equal(settled, []bool{false}) {
			t.Errorf("settled %v, want once, not committed", settled)
		}
		unchanged(t)
	})
}

// Counts live on the state row: ingest adds to them, state changes adjust
// them. When retention moves the epoch they are stale, and every reader
// that needs them recounts under the row's lock.
func TestStaleCountsAreRecountedUnderTheLock(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	rows := inboxOf(t, s, "u1", 0, 5, nil)
	mustMark(t, s, "u1", event.OpRead, rows[0].ID)
	mustMark(t, s, "u1", event.OpArchive, rows[1].ID)
	want := event.Counts{Total: 4, Unread: 3, Unseen: 3}
	if c := recount(t, s, "u1"); c != want {
		t.Fatalf("recount %+v", c)
	}
	// Wrong figures, as a cache that still counts rows retention removed.
	stale := func() {
		t.Helper()
		if _, err := s.Pool.Exec(ctx, `UPDATE inbox_states SET total = 100, unread = 100, unseen = 100 WHERE recipient_id = 'u1'`); err != nil {
			t.Fatal(err)
		}
	}
	bump := func() {
		t.Helper()
		if _, err := s.Pool.Exec(ctx, `UPDATE inbox_epoch SET epoch = epoch + 1`); err != nil {
			t.Fatal(err)
		}
	}
	valid := func() bool {
		return count(t, s, `SELECT count(*) FROM inbox_states WHERE recipient_id = 'u1' AND counts_epoch = (SELECT epoch FROM inbox_epoch)`) == 1
	}
	stale()
	if c := counts(t, s, "u1"); c.Total != 100 {
		t.Fatalf("counts %+v: GET counts must read the cached row while its epoch is current", c)
	}
	bump()
	if valid() {
		t.Fatal("the epoch moved but the counts are still valid")
	}
	for _, r := range []func() *event.Counts{
		func() *event.Counts { h, _ := s.Heads(ctx, []string{"u1"}); return h["u1"].Counts },
		func() *event.Counts { p, _ := s.StreamAfter(ctx, "u1", 0, 1); return p.Head.Counts },
	} {
		if c := r(); c != nil {
			t.Errorf("stale counts read as %+v", *c)
		}
	}
	c, pos, err := s.Counts(ctx, "u1")
	if err != nil || c != want || pos != 7 || !valid() {
		t.Errorf("Counts after a new epoch = %+v at %d, %v (cached: %v); want the recount %+v at 7", c, pos, err, valid(), want)
	}

	t.Run("a state change recounts first", func(t *testing.T) {
		stale()
		bump()
		ch := mustMark(t, s, "u1", event.OpRead, rows[2].ID)
		if w := (event.Counts{Total: 4, Unread: 2, Unseen: 2}); ch.Counts != w || counts(t, s, "u1") != w {
			t.Errorf("change answered %+v, counts %+v; want %+v", ch.Counts, counts(t, s, "u1"), w)
		}
	})
	t.Run("an all operation recounts first", func(t *testing.T) {
		stale()
		bump()
		ch := mustMarkAll(t, s, "u1", event.OpSeen)
		if w := (event.Counts{Total: 4, Unread: 2}); ch.Counts != w || ch.Updated != 3 || counts(t, s, "u1") != w {
			t.Errorf("seen all: %+v, counts %+v; want 3 updated and %+v", ch, counts(t, s, "u1"), w)
		}
	})
	t.Run("ingest adds to stale counts without knowing them", func(t *testing.T) {
		stale()
		bump()
		more := inboxOf(t, s, "u1", 10, 1, nil)
		if more[0].Counts != nil {
			t.Errorf("a row of a stale cache has counts %+v", *more[0].Counts)
		}
		if got, want := counts(t, s, "u1"), recount(t, s, "u1"); got != want || got.Total != 5 {
			t.Errorf("counts %+v, recount %+v", got, want)
		}
	})
}

// Retention removes the stream changes older than the notifications it
// keeps, in batches.
func TestMaintainRemovesOldStreamChanges(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	rows := inboxOf(t, s, "u1", 0, 3, nil)
	for _, r := range rows {
		mustMark(t, s, "u1", event.OpRead, r.ID) // 4, 5, 6
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE inbox_changes SET created_at = now() - interval '10 days' WHERE pos <= 5`); err != nil {
		t.Fatal(err)
	}
	res, err := s.Maintain(ctx, time.Now(), 4*store.Day)
	if err != nil || res.Changes != 2 {
		t.Fatalf("maintain %+v, %v; want the 2 old changes removed", res, err)
	}
	if _, changes := positions(t, s, "u1"); !slices.Equal(changes, []int64{6}) {
		t.Errorf("changes left %v, want 6", changes)
	}
	if res, err := s.Maintain(ctx, time.Now(), 0); err != nil || res.Changes != 0 {
		t.Errorf("without retention: %+v, %v", res, err)
	}
	if _, changes := positions(t, s, "u1"); !slices.Equal(changes, []int64{6}) {
		t.Errorf("changes left %v, want 6", changes)
	}
}
