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
// and can fail the stage of one transaction.
type stages struct {
	mu      sync.Mutex
	txs     [][]*event.Row
	xids    []int64
	failAt  int // the stage call that fails (1-based), 0: none
	calls   int
	aborted int // stages whose transaction did not commit
}

func (s *stages) Stage(_ context.Context, tx *store.Tx, rows []*event.Row) (func(bool), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls++; s.calls == s.failAt {
		return nil, errors.New("stage failed on purpose")
	}
	xid := tx.Xid()
	return func(committed bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !committed {
			s.aborted++
			return
		}
		s.txs = append(s.txs, rows)
		s.xids = append(s.xids, xid)
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

func seqs(t *testing.T, st *store.Store) (rows, txs int) {
	t.Helper()
	rows = testkit.Count(t, st, `SELECT count(*) FROM notifications`)
	txs = testkit.Count(t, st, `SELECT count(DISTINCT seq >> 20) FROM notifications`)
	return rows, txs
}

func TestABatchOfMoreRowsThanTheBoundIsStoredInSeveralTransactionsInOrder(t *testing.T) {
	t.Parallel()
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
		if i > 0 && pushed.xids[i] <= pushed.xids[i-1] {
			t.Errorf("transaction %d has id %d, not after %d: chunks out of order", i+1, pushed.xids[i], pushed.xids[i-1])
		}
		if i > 0 && tx[0].Seq <= pushed.txs[i-1][len(pushed.txs[i-1])-1].Seq {
			t.Errorf("transaction %d starts at seq %d, not after the previous one's rows", i+1, tx[0].Seq)
		}
	}
	if rows, txs := seqs(t, st); rows != 10 || txs != 4 {
		t.Errorf("stored %d rows in %d transactions, want 10 in 4", rows, txs)
	}
}

func TestARetryResumesAtTheChunkThatFailed(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
}

func TestMutedNotificationsAreNeitherStoredNorPushed(t *testing.T) {
	t.Parallel()
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
