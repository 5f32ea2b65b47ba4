package ingest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/ingest"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

// deadReasons maps offsets to the reasons of their dead letters.
func deadReasons(t *testing.T, st *store.Store) map[int64]string {
	t.Helper()
	dls, err := st.ListDeadLetters(context.Background(), store.DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	for _, d := range dls {
		out[d.Source.Offset] = d.Reason
	}
	return out
}

// Issue 20, items 2 and 4: a 431 KB record became 600 MB of rows, and a
// record stamped -1 stalled every partition.
func TestARecordPastALimitIsADeadLetterBeforeAnyRowIsBuilt(t *testing.T) {
	st, _ := pgtest.Open(t)
	// A template that repeats data: its output is what a row holds.
	renderer, err := event.NewRenderer(map[string]event.TemplateText{
		"ECHO": {Content: `{{range .Data.list}}{{$.Data.text}}{{end}}`},
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	limits := ingest.Limits{MaxDataBytes: 4096, MaxRowBytes: 16384, MaxRowsPerRecord: 50, MaxBytesPerRecord: 100_000, MaxClockSkew: time.Minute}
	rec := &recorder{}
	in := ingest.New(ingest.Options{Store: st, Renderer: renderer, Pusher: rec, Limits: limits, Now: func() time.Time { return now }})
	addMembers(t, st, "org", "big", recipientsN("m", 51)...)
	addMembers(t, st, "org", "wide", recipientsN("w", 30)...)
	valid := func(r string) []byte { return testkit.Message("users", []string{r}, nil) }
	users := func(n int, edit func(m map[string]any)) []byte {
		return testkit.Message("users", recipientsN("u", n), edit)
	}
	withData := func(n int) func(m map[string]any) {
		return func(m map[string]any) { m["data"] = map[string]any{"s": strings.Repeat("x", n)} }
	}
	cases := []struct {
		value  []byte
		ts     time.Time
		reason string // "" : stored
	}{
		{valid("ok0"), now, ""},
		{users(1, withData(5000)), now, event.ReasonTooLarge},  // data
		{users(1, withData(3000)), now, ""},                    // data within
		{users(51, nil), now, event.ReasonTooManyRecipients},   // rows
		{users(40, withData(3000)), now, event.ReasonTooLarge}, // rows × bytes
		{testkit.Message("org", nil, func(m map[string]any) { m["organizerId"] = "big" }), now, event.ReasonTooManyRecipients}, // members
		{testkit.Message("org", nil, func(m map[string]any) {
			m["organizerId"], m["data"] = "wide", map[string]any{"s": strings.Repeat("y", 4000)}
		}), now, event.ReasonTooLarge}, // members × bytes
		{testkit.Message("users", []string{"e1"}, func(m map[string]any) {
			m["eventType"], m["data"] = "ECHO", map[string]any{"list": make([]int, 1000), "text": strings.Repeat("z", 100)}
		}), now, event.ReasonTooLarge}, // a template's output
		{[]byte(`{"data":"` + strings.Repeat("a", 4<<20) + `"}`), now, event.ReasonTooLarge}, // a value too large to parse
		{valid("ok1"), time.UnixMilli(-1), event.ReasonTimestampOutOfRange},
		{valid("ok2"), time.Time{}, event.ReasonTimestampOutOfRange},
		{valid("ok3"), time.UnixMilli(0), event.ReasonTimestampOutOfRange},
		{valid("ok4"), now.Add(2 * time.Minute), event.ReasonTimestampOutOfRange},
		{valid("ok5"), now.Add(30 * time.Second), ""},
		{valid("ok6"), now, ""},
	}
	batch := make([]ingest.Record, len(cases))
	for i, c := range cases {
		batch[i] = ingest.Record{Source: event.Source{Topic: "t", Offset: int64(i), Timestamp: c.ts}, Value: c.value}
	}
	before := partitionCount(t, st)
	res, err := in.Handle(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	reasons := deadReasons(t, st)
	for i, c := range cases {
		if reasons[int64(i)] != c.reason {
			t.Errorf("record %d: dead letter %q, want %q", i, reasons[int64(i)], c.reason)
		}
	}
	if res.Inserted != 4 || testkit.Count(t, st, `SELECT count(*) FROM notifications`) != 4 || len(rec.take()) != 4 {
		t.Errorf("inserted %d, want the 4 valid rows stored and pushed", res.Inserted)
	}
	if after := partitionCount(t, st); after > before+1 {
		t.Errorf("%d partitions made for one day", after-before)
	}
}

func recipientsN(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func partitionCount(t *testing.T, st *store.Store) int {
	t.Helper()
	parts, err := st.Partitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(parts)
}

// The last resort: when the database rejects even the dead letter, it is
// kept without the record's bytes, and the records after it go on.
func TestADeadLetterTheDatabaseRejectsIsKeptWithoutItsBytes(t *testing.T) {
	in, st, rec := newIngestor(t, time.Minute)
	ctx := context.Background()
	// A rule the code cannot foresee stands in for whatever the database
	// might refuse in a dead letter.
	if _, err := st.Pool.Exec(ctx, `ALTER TABLE dead_letters ADD CONSTRAINT small CHECK (octet_length(value) < 100)`); err != nil {
		t.Fatal(err)
	}
	big := []byte(strings.Repeat("not json ", 20))
	res, err := in.Handle(ctx, records(testkit.Message("users", []string{"u1"}, nil), big, testkit.Message("users", []string{"u2"}, nil)))
	if err != nil || res.Inserted != 2 || res.DeadLetters != 1 {
		t.Fatalf("Handle = %+v, %v", res, err)
	}
	dls, err := st.ListDeadLetters(ctx, store.DeadLetterFilter{})
	if err != nil || len(dls) != 1 {
		t.Fatalf("dead letters %v, %v", dls, err)
	}
	d := dls[0]
	if d.Reason != event.ReasonDBRejected || d.Value != nil || d.Source.Offset != 1 ||
		!strings.Contains(d.Detail, fmt.Sprintf("value %d bytes", len(big))) || !strings.Contains(d.Detail, "malformed_json") {
		t.Errorf("last-resort dead letter: %s %q (value %q)", d.Reason, d.Detail, d.Value)
	}
	if n := len(rec.take()); n != 2 {
		t.Errorf("pushed %d rows, want 2", n)
	}
}

// A chunk holds at most maxBytesPerTx of rows, whatever MaxRowsPerTx says:
// memory holds one chunk's rows and frames.
func TestLargeRowsAreStoredInChunksBoundedByBytes(t *testing.T) {
	in, st, p, _ := newChunkedIngestor(t, 8192)
	addMembers(t, st, "org", "org-1", recipientsN("m", 700)...)
	// ~64 KiB rows: 700 of them are ~45 MiB, more than one chunk's 32 MiB.
	msg := testkit.Message("org", nil, func(m map[string]any) { m["data"] = map[string]any{"s": strings.Repeat("d", 64000)} })
	res, err := in.Handle(context.Background(), records(msg))
	if err != nil || res.Inserted != 700 {
		t.Fatalf("Handle = %+v, %v", res, err)
	}
	if len(p.txs) < 2 {
		t.Fatalf("%d transaction(s), want the rows split by bytes", len(p.txs))
	}
	for i, tx := range p.txs {
		if n := len(tx) * 64000; n > 32<<20 {
			t.Errorf("transaction %d holds %d rows, ~%d bytes", i, len(tx), n)
		}
	}
}
