package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/ingest"
	"github.com/signal-notify/signal/internal/metrics"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

// stages is a Pusher that keeps each committed transaction's rows apart,
// in the order they committed, and can fail the stage of one transaction.
type stages struct {
	mu      sync.Mutex
	txs     [][]*event.Row
	failAt  int // the stage call that fails (1-based), 0: none
	calls   int
	aborted int // stages whose transaction did not commit
}

func (s *stages) Stage(_ context.Context, _ *store.Tx, rows []*event.Row) (func(bool), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls++; s.calls == s.failAt {
		return nil, errors.New("stage failed on purpose")
	}
	return func(committed bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !committed {
			s.aborted++
			return
		}
		s.txs = append(s.txs, rows)
	}, nil
}

func (s *stages) recipients() []string {
	var out []string
	for _, tx := range s.txs {
		for _, r := range tx {
			out = append(out, r.RecipientID)
		}
	}
	return out
}

func newChunkedIngestor(t *testing.T, maxRows int) (*ingest.Ingestor, *store.Store, *stages, *metrics.Metrics) {
	t.Helper()
	st, _ := pgtest.Open(t)
	renderer, err := event.NewRenderer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, m := &stages{}, metrics.New()
	return ingest.New(ingest.Options{Store: st, Renderer: renderer, Pusher: p, RepushWindow: time.Minute, MaxRowsPerTx: maxRows, Metrics: m}), st, p, m
}

func addMembers(t *testing.T, st *store.Store, scope, id string, rcpts ...string) {
	t.Helper()
	if _, err := st.ChangeMembers(context.Background(), event.ScopeKey{Scope: scope, ID: id}, event.OpAdd, store.SliceIDs(rcpts)); err != nil {
		t.Fatal(err)
	}
}

// seqs counts the stored rows and the transactions that inserted them.
func seqs(t *testing.T, st *store.Store) (rows, txs int) {
	t.Helper()
	rows = testkit.Count(t, st, `SELECT count(*) FROM notifications`)
	txs = testkit.Count(t, st, `SELECT count(DISTINCT xmin::text) FROM notifications`)
	return rows, txs
}

// positionsOf returns each recipient's positions, in record order.
func positionsOf(t *testing.T, st *store.Store) map[string][]int64 {
	t.Helper()
	rows, err := st.Pool.Query(context.Background(), `SELECT recipient_id, seq FROM notifications ORDER BY source_offset, recipient_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]int64{}
	for rows.Next() {
		var r string
		var seq int64
		if err := rows.Scan(&r, &seq); err != nil {
			t.Fatal(err)
		}
		out[r] = append(out[r], seq)
	}
	return out
}

func TestABatchOfMoreRowsThanTheBoundIsStoredInSeveralTransactionsInOrder(t *testing.T) {
	in, st, pushed, _ := newChunkedIngestor(t, 3)
	ctx := context.Background()
	addMembers(t, st, "org", "big", "m1", "m2", "m3", "m4", "m5", "m6", "m7")
	res, err := in.Handle(ctx, records(
		testkit.Message("users", []string{"u1"}, nil),
		testkit.Message("org", nil, func(m map[string]any) { m["organizerId"] = "big" }),
		testkit.Message("users", []string{"u2", "u3"}, nil),
	))
	if err != nil || res.Inserted != 10 {
		t.Fatalf("Handle = %+v, %v; want 10 rows", res, err)
	}
	// The first of several transactions is a quarter of the bound (at
	// least one row): the first recipients are pushed sooner.
	want := [][]string{{"u1"}, {"m1", "m2", "m3"}, {"m4", "m5", "m6"}, {"m7", "u2", "u3"}}
	if len(pushed.txs) != len(want) {
		t.Fatalf("%d transactions pushed %v, want %d of at most 3 rows", len(pushed.txs), pushed.recipients(), len(want))
	}
	for i, tx := range pushed.txs {
		var got []string
		for _, r := range tx {
			got = append(got, r.RecipientID)
		}
		if strings.Join(got, ",") != strings.Join(want[i], ",") {
			t.Errorf("transaction %d pushed %v, want %v", i+1, got, want[i])
		}
	}
	if rows, txs := seqs(t, st); rows != 10 || txs != 4 {
		t.Errorf("stored %d rows in %d transactions, want 10 in 4", rows, txs)
	}
}

func TestARetryResumesAtTheChunkThatFailed(t *testing.T) {
	in, st, pushed, _ := newChunkedIngestor(t, 4)
	ctx := context.Background()
	var members []string
	for i := 0; i < 10; i++ {
		members = append(members, fmt.Sprintf("m%02d", i))
	}
	addMembers(t, st, "org", "big", members...)
	p := in.Prepare(records(testkit.Message("org", nil, func(m map[string]any) { m["organizerId"] = "big" }), []byte("not json")))
	pushed.failAt = 2 // the second chunk's transaction fails, as if the database went away
	if _, err := in.Persist(ctx, p); err == nil {
		t.Fatal("Persist succeeded although a chunk failed")
	}
	if rows, _ := seqs(t, st); rows != 1 {
		t.Fatalf("%d rows after the failure, want the first chunk's 1", rows)
	}
	// A membership change meanwhile does not change the batch: it was
	// resolved when its first transaction ran.
	addMembers(t, st, "org", "big", "m00a")
	res, err := in.Persist(ctx, p)
	if err != nil || res.Inserted != 10 || res.Repushed != 0 || res.DeadLetters != 1 {
		t.Fatalf("retry = %+v, %v; want 10 inserted in all, 1 dead letter, nothing pushed twice", res, err)
	}
	if got := strings.Join(pushed.recipients(), ","); got != strings.Join(members, ",") {
		t.Errorf("pushed %s, want each member once, in order", got)
	}
	if pushed.aborted != 0 {
		t.Errorf("%d staged transactions did not commit", pushed.aborted)
	}
	if n := testkit.Count(t, st, `SELECT count(*) FROM dead_letters`); n != 1 {
		t.Errorf("%d dead letters, want 1 (stored with the first chunk, not again)", n)
	}
	if rows, txs := seqs(t, st); rows != 10 || txs != 4 {
		t.Errorf("stored %d rows in %d transactions, want 10 in 4 (1, 4, 4, 1)", rows, txs)
	}
}

func TestARedeliveredBigEventAddsNoRow(t *testing.T) {
	in, st, pushed, _ := newChunkedIngestor(t, 100)
	ctx := context.Background()
	var members []string
	for i := 0; i < 1000; i++ {
		members = append(members, fmt.Sprintf("m%04d", i))
	}
	addMembers(t, st, "org", "big", members...)
	batch := records(testkit.Message("org", nil, func(m map[string]any) { m["organizerId"] = "big" }))
	if res, err := in.Handle(ctx, batch); err != nil || res.Inserted != 1000 {
		t.Fatalf("first = %+v, %v", res, err)
	}
	pushed.txs = nil
	res, err := in.Handle(ctx, batch)
	if err != nil || res.Inserted != 0 || res.Repushed != 1000 {
		t.Fatalf("redelivery = %+v, %v; want nothing inserted, 1000 pushed again (recent)", res, err)
	}
	if rows, txs := seqs(t, st); rows != 1000 || txs != 11 {
		t.Errorf("stored %d rows in %d transactions, want 1000 in 11 (25, then 100 at a time)", rows, txs)
	}
	// The redelivery took no position.
	heads, err := st.PeekHeads(ctx, members)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if heads[m] != 1 {
			t.Fatalf("%s is at %d after a redelivery, want 1", m, heads[m])
		}
	}
}

// A recipient's rows take the next positions of its stream in record
// order, whichever chunk (transaction) stores them, and are pushed with
// them and the counts after them. A redelivery takes no position, and a
// batch redelivered with a new record positions only the new rows.
func TestPositionsFollowRecordOrderAcrossChunks(t *testing.T) {
	in, st, pushed, _ := newChunkedIngestor(t, 3)
	ctx := context.Background()
	addMembers(t, st, "org", "big", "u1", "m1")
	msgs := [][]byte{
		testkit.Message("users", []string{"u1", "u2"}, nil),
		testkit.Message("org", nil, func(m map[string]any) { m["organizerId"] = "big" }),
		testkit.Message("users", []string{"u1"}, nil),
		testkit.Message("users", []string{"u2", "u1"}, nil),
	}
	batch := records(msgs...)
	res, err := in.Handle(ctx, batch)
	if err != nil || res.Inserted != 7 {
		t.Fatalf("Handle = %+v, %v", res, err)
	}
	if len(pushed.txs) < 3 {
		t.Fatalf("%d transactions, want the batch in several", len(pushed.txs))
	}
	want := map[string][]int64{"u1": {1, 2, 3, 4}, "u2": {1, 2}, "m1": {1}}
	if got := positionsOf(t, st); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("positions %v, want %v", got, want)
	}
	var n int
	for _, tx := range pushed.txs {
		for _, r := range tx {
			n++
			if c := r.Counts; c == nil || *c != (event.Counts{Total: r.Seq, Unread: r.Seq, Unseen: r.Seq}) {
				t.Errorf("%s at %d pushed with counts %v, want %d of each", r.RecipientID, r.Seq, c, r.Seq)
			}
		}
	}
	if n != 7 {
		t.Errorf("pushed %d rows, want 7", n)
	}

	pushed.txs = nil
	src := batch[0].Source
	src.Offset = int64(len(batch))
	batch = append(batch, ingest.Record{Source: src, Value: testkit.Message("users", []string{"u1"}, nil)})
	res, err = in.Handle(ctx, batch)
	if err != nil || res.Inserted != 1 || res.Repushed != 7 {
		t.Fatalf("redelivery with a new record = %+v, %v", res, err)
	}
	want["u1"] = append(want["u1"], 5)
	if got := positionsOf(t, st); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("positions %v, want %v", got, want)
	}
	heads, err := st.PeekHeads(ctx, []string{"u1", "u2", "m1"})
	if err != nil || heads["u1"] != 5 || heads["u2"] != 2 || heads["m1"] != 1 {
		t.Errorf("heads %v, %v", heads, err)
	}
	for _, r := range []string{"u1", "u2", "m1"} {
		c, pos, err := st.Counts(ctx, r)
		if n := int64(len(want[r])); err != nil || c != (event.Counts{Total: n, Unread: n, Unseen: n}) || pos != n {
			t.Errorf("%s: counts %+v at %d, %v", r, c, pos, err)
		}
	}
}

func TestMutedNotificationsAreNeitherStoredNorPushed(t *testing.T) {
	in, st, pushed, m := newChunkedIngestor(t, 1000)
	ctx := context.Background()
	addMembers(t, st, "org", "org-1", "m1", "m2", "m3")
	addMembers(t, st, "merchant", "shop", "m1", "m2", "m3")
	mute := map[string]event.Preferences{
		"m1": {MutedTypes: []string{"PAYMENT_SUCCESS"}},
		"m2": {MutedOrganizers: []string{"org-1"}},
		"m3": {MutedMerchants: []string{"other-shop"}},
		"u1": {MutedOrganizers: []string{"org-1"}},
		"u3": {MutedTypes: []string{"SOMETHING_ELSE"}},
	}
	for r, p := range mute {
		if err := st.SetPreferences(ctx, r, p); err != nil {
			t.Fatal(err)
		}
	}
	many := make([]string, event.MaxRecipientIDs)
	for i := range many {
		many[i] = fmt.Sprintf("x%d", i)
	}
	many[7] = "u1"
	res, err := in.Handle(ctx, records(
		testkit.Message("org", nil, nil),                          // m1 mutes the type, m2 the organizer
		testkit.Message("users", []string{"u1", "u2", "u3"}, nil), // u1 mutes org-1
		testkit.Message("merchant", nil, func(m map[string]any) { m["merchantId"] = "shop"; m["eventType"] = "T" }), // m2 mutes org-1
		testkit.Message("users", many[:10], func(m map[string]any) { m["organizerId"] = "org-2" }),                  // nobody mutes org-2
		// Three times u1 and 9,999 others, the third past what Prepare
		// builds ahead (its rows are built chunk by chunk).
		testkit.Message("users", many, nil),
		testkit.Message("users", many, nil),
		testkit.Message("users", many, nil),
	))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tx := range pushed.txs {
		for _, r := range tx {
			if !strings.HasPrefix(r.RecipientID, "x") {
				got = append(got, r.Type+"/"+r.RecipientID)
			}
		}
	}
	want := "PAYMENT_SUCCESS/m3 PAYMENT_SUCCESS/u2 PAYMENT_SUCCESS/u3 T/m1 T/m3 PAYMENT_SUCCESS/u1"
	if strings.Join(got, " ") != want {
		t.Errorf("pushed %s, want %s", strings.Join(got, " "), want)
	}
	stored := testkit.Count(t, st, `SELECT count(*) FROM notifications WHERE recipient_id NOT LIKE 'x%'`)
	xs := testkit.Count(t, st, `SELECT count(*) FROM notifications WHERE recipient_id LIKE 'x%'`)
	if wantX := 9 + 3*(event.MaxRecipientIDs-1); stored != 6 || xs != wantX {
		t.Errorf("stored %d rows of the named recipients and %d of the others, want 6 and %d", stored, xs, wantX)
	}
	if res.Inserted != stored+xs || res.DeadLetters != 0 {
		t.Errorf("Handle = %+v, want %d inserted", res, stored+xs)
	}
	if n := counter(t, m, "signal_notifications_muted_total"); n != 7 {
		t.Errorf("signal_notifications_muted_total = %v, want 7 (m1, m2, u1, m2, u1 three times)", n)
	}
}

// counter reads a counter of m's registry.
func counter(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, s := range mf.GetMetric() {
				total += s.GetCounter().GetValue()
			}
		}
	}
	return total
}
