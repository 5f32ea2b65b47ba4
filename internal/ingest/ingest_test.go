package ingest_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/ingest"
	"github.com/signal-notify/signal/internal/metrics"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

// recorder is a Pusher that keeps the rows of committed transactions.
type recorder struct {
	mu   sync.Mutex
	rows []*event.Row
}

func (r *recorder) Stage(_ context.Context, _ *store.Tx, rows []*event.Row) (func(bool), error) {
	for _, row := range rows {
		if row.Seq <= 0 {
			return nil, errors.New("staged a row without its position in the recipient's stream")
		}
	}
	return func(committed bool) {
		if committed {
			r.mu.Lock()
			r.rows = append(r.rows, rows...)
			r.mu.Unlock()
		}
	}, nil
}

func (r *recorder) take() []*event.Row {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.rows
	r.rows = nil
	return out
}

func newIngestor(t *testing.T, window time.Duration) (*ingest.Ingestor, *store.Store, *recorder) {
	t.Helper()
	st, _ := pgtest.Open(t)
	renderer, err := event.NewRenderer(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	return ingest.New(ingest.Options{Store: st, Renderer: renderer, Pusher: rec, RepushWindow: window}), st, rec
}

func records(values ...[]byte) []ingest.Record {
	ts := time.Now().Truncate(time.Millisecond)
	out := make([]ingest.Record, len(values))
	for i, v := range values {
		out[i] = ingest.Record{Source: event.Source{Topic: "t", Partition: 0, Offset: int64(i), Timestamp: ts}, Value: v}
	}
	return out
}

func TestARedeliveredBatchIsPushedAgainWithTheSameIDs(t *testing.T) {
	t.Parallel()
	in, _, rec := newIngestor(t, time.Minute)
	ctx := context.Background()
	batch := records(testkit.Message("users", []string{"u1", "u2"}, nil), testkit.Message("users", []string{"u3"}, nil))
	res, err := in.Handle(ctx, batch)
	if err != nil || res.Inserted != 3 || res.Repushed != 0 {
		t.Fatalf("first: %+v, %v", res, err)
	}
	first := rec.take()
	res, err = in.Handle(ctx, batch)
	if err != nil || res.Inserted != 0 || res.Repushed != 3 {
		t.Fatalf("redelivery: %+v, %v", res, err)
	}
	again := rec.take()
	if len(again) != len(first) {
		t.Fatalf("pushed %d rows again, want %d", len(again), len(first))
	}
	for i := range first {
		if again[i].ID != first[i].ID || again[i].Seq != first[i].Seq || !again[i].CreatedAt.Equal(first[i].CreatedAt) {
			t.Errorf("row %d: pushed again as %s/%d, first %s/%d", i, again[i].ID, again[i].Seq, first[i].ID, first[i].Seq)
		}
	}
}

func TestRowsOlderThanTheRepushWindowAreNotPushedAgain(t *testing.T) {
	t.Parallel()
	in, st, rec := newIngestor(t, time.Minute)
	ctx := context.Background()
	batch := records(testkit.Message("users", []string{"u1"}, nil))
	if _, err := in.Handle(ctx, batch); err != nil {
		t.Fatal(err)
	}
	rec.take()
	st.Pool.Exec(ctx, `UPDATE notifications SET created_at = now() - interval '2 minutes'`)
	res, err := in.Handle(ctx, batch)
	if err != nil || res.Inserted != 0 || res.Repushed != 0 {
		t.Fatalf("redelivery of old rows: %+v, %v", res, err)
	}
	if got := rec.take(); len(got) != 0 {
		t.Errorf("pushed %d old rows", len(got))
	}
}

func TestABatchKeepsOrderAndMixesRowsWithDeadLetters(t *testing.T) {
	t.Parallel()
	in, st, rec := newIngestor(t, time.Minute)
	ctx := context.Background()
	if _, err := st.ChangeMembers(ctx, event.ScopeKey{Scope: "org", ID: "org-1"}, event.OpAdd, store.SliceIDs([]string{"m2", "m1"})); err != nil {
		t.Fatal(err)
	}
	res, err := in.Handle(ctx, records(
		testkit.Message("users", []string{"u1"}, nil),
		[]byte("{"),
		testkit.Message("org", nil, nil),
		testkit.Message("merchant", nil, func(m map[string]any) { m["merchantId"] = "nobody" }),
		testkit.Message("users", []string{"u2"}, nil),
	))
	if err != nil || res.Inserted != 4 || res.DeadLetters != 2 {
		t.Fatalf("Handle = %+v, %v", res, err)
	}
	var order []string
	for _, r := range rec.take() {
		order = append(order, r.RecipientID)
	}
	if strings.Join(order, ",") != "u1,m1,m2,u2" {
		t.Errorf("push order %v, want record order with org members sorted", order)
	}
	var reasons string
	st.Pool.QueryRow(ctx, `SELECT string_agg(reason, ',' ORDER BY "offset") FROM dead_letters`).Scan(&reasons)
	if reasons != "malformed_json,no_recipients" {
		t.Errorf("dead letter reasons %q", reasons)
	}
}

func TestARecordTheDatabaseRejectsIsIsolatedAsADeadLetter(t *testing.T) {
	t.Parallel()
	in, st, rec := newIngestor(t, time.Minute)
	ctx := context.Background()
	// Validation cannot foresee every rule of the database: a check
	// constraint stands in for one here, failing one record of the batch.
	if _, err := st.Pool.Exec(ctx, `ALTER TABLE notifications ADD CONSTRAINT no_poison CHECK (recipient_id <> 'poison')`); err != nil {
		t.Fatal(err)
	}
	var values [][]byte
	for i := 0; i < 9; i++ {
		r := "u"
		if i == 6 {
			r = "poison"
		}
		values = append(values, testkit.Message("users", []string{r}, nil))
	}
	res, err := in.Handle(ctx, records(values...))
	if err != nil || res.Inserted != 8 || res.DeadLetters != 1 {
		t.Fatalf("Handle = %+v, %v", res, err)
	}
	var reason, detail string
	var offset int64
	st.Pool.QueryRow(ctx, `SELECT reason, detail, "offset" FROM dead_letters`).Scan(&reason, &detail, &offset)
	if reason != "db_rejected" || offset != 6 || !strings.Contains(detail, "no_poison") {
		t.Errorf("dead letter %s at %d: %s", reason, offset, detail)
	}
	if n := len(rec.take()); n != 8 {
		t.Errorf("pushed %d rows, want the 8 stored", n)
	}
}

func TestATransientFailureIsReturnedForRetry(t *testing.T) {
	t.Parallel()
	in, st, _ := newIngestor(t, time.Minute)
	st.Close() // the pool is gone: every query fails like an unreachable server
	_, err := in.Handle(context.Background(), records(testkit.Message("users", []string{"u1"}, nil)))
	if err == nil || !store.IsTransient(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
}

func stampedRecords(at time.Time, first int, values ...[]byte) []ingest.Record {
	out := make([]ingest.Record, len(values))
	for i, v := range values {
		out[i] = ingest.Record{Source: event.Source{Topic: "t", Partition: 1, Offset: int64(first + i), Timestamp: at}, Value: v}
	}
	return out
}

func TestARecordOlderThanTheRetentionIsSkippedAndCounted(t *testing.T) {
	t.Parallel()
	st, _ := pgtest.Open(t)
	renderer, _ := event.NewRenderer(nil)
	m := metrics.New()
	now := time.Now()
	in := ingest.New(ingest.Options{Store: st, Renderer: renderer, Retention: 24 * time.Hour, Now: func() time.Time { return now }, Metrics: m})
	ctx := context.Background()
	batch := append(stampedRecords(now.Add(-25*time.Hour), 0, testkit.Message("users", []string{"u1"}, nil), []byte("not even JSON")),
		stampedRecords(now.Add(-23*time.Hour), 2, testkit.Message("users", []string{"u1"}, nil))...)
	res, err := in.Handle(ctx, batch)
	if err != nil || res.Inserted != 1 || res.DeadLetters != 0 || len(res.Expired) != 2 || res.Expired[0].Offset != 0 {
		t.Fatalf("Handle = %+v, %v: want the recent record stored, both old ones skipped", res, err)
	}
	if n := testkit.Count(t, st, `SELECT count(*) FROM notifications`); n != 1 {
		t.Errorf("%d rows", n)
	}
	if n := testkit.Count(t, st, `SELECT count(*) FROM dead_letters`); n != 0 {
		t.Errorf("%d dead letters: an expired record is skipped, not kept", n)
	}
	var got dto.Metric
	if m.Expired.Write(&got); got.GetCounter().GetValue() != 2 {
		t.Errorf("expired metric %v, want 2", got.GetCounter().GetValue())
	}
	// Its day may be gone already: its partition is not created again.
	if parts, _ := st.Partitions(ctx); slices.ContainsFunc(parts, func(p store.Partition) bool {
		return p.Name == store.DayPartition(now.Add(-25*time.Hour)) && p.Name != store.DayPartition(now.Add(-23*time.Hour))
	}) {
		t.Errorf("the expired record's day got a partition: %v", parts)
	}
}

func TestARecordRedeliveredAfterItsDayEndedAddsNoRow(t *testing.T) {
	t.Parallel()
	in, st, _ := newIngestor(t, time.Minute)
	ctx := context.Background()
	// The last millisecond of yesterday: the row lands in yesterday's
	// partition, whenever it is (re)delivered.
	at := time.Now().UTC().Truncate(store.Day).Add(-time.Millisecond)
	batch := stampedRecords(at, 0, testkit.Message("users", []string{"u1", "u2"}, nil))
	if res, err := in.Handle(ctx, batch); err != nil || res.Inserted != 2 {
		t.Fatalf("first delivery: %+v, %v", res, err)
	}
	if res, err := in.Handle(ctx, batch); err != nil || res.Inserted != 0 {
		t.Fatalf("redelivery: %+v, %v", res, err)
	}
	var n int
	var part string
	st.Pool.QueryRow(ctx, `SELECT count(*), min(tableoid::regclass::text) FROM notifications`).Scan(&n, &part)
	if n != 2 || part != store.DayPartition(at) {
		t.Errorf("%d rows in %s, want 2 in %s", n, part, store.DayPartition(at))
	}
}

func TestARecordOfADayWithoutAPartitionGetsOneFirst(t *testing.T) {
	t.Parallel()
	st, _ := pgtest.Open(t)
	renderer, _ := event.NewRenderer(nil)
	rec := &recorder{}
	// Six days ahead: within the largest ingest.max_clock_skew, and
	// Maintain (which makes those days first) does not run here.
	in := ingest.New(ingest.Options{Store: st, Renderer: renderer, Pusher: rec, Limits: ingest.Limits{MaxClockSkew: ingest.MaxClockSkewLimit}})
	ctx := context.Background()
	past, future := time.Now().Add(-40*store.Day), time.Now().Add(6*store.Day)
	res, err := in.Handle(ctx, append(stampedRecords(past, 0, testkit.Message("users", []string{"u1"}, nil)),
		stampedRecords(future, 1, testkit.Message("users", []string{"u1"}, nil))...))
	if err != nil || res.Inserted != 2 || res.DeadLetters != 0 {
		t.Fatalf("Handle = %+v, %v", res, err)
	}
	if len(rec.take()) != 2 {
		t.Error("not pushed")
	}
	parts, _ := st.Partitions(ctx)
	for _, at := range []time.Time{past, future} {
		if !slices.ContainsFunc(parts, func(p store.Partition) bool { return p.Name == store.DayPartition(at) }) {
			t.Errorf("no partition %s", store.DayPartition(at))
		}
	}
}
