package store_test

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// Issue 20, item 1: a header key with NUL made the dead letter unstorable
// (jsonb refuses \u0000), and the partition stalled for ever.
func TestADeadLetterIsStoredWhateverTheRecordHolds(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	hostile := []event.Header{
		{Key: "a\x00b", Value: []byte{0}},
		{Key: "\xff\xfe", Value: nil},
		{Key: "ok", Value: []byte("v")},
		{Key: "", Value: []byte{}},
	}
	cases := []struct {
		name string
		ts   time.Time
		dl   *event.DeadLetter
	}{
		{"NUL and invalid UTF-8 in header keys, key and value", time.Now(), &event.DeadLetter{
			Key: []byte("k\x00\xff"), Value: []byte("not json\x00\xff"), Headers: hostile,
			Reason: event.ReasonMalformedJSON, Detail: "bad \x00 byte \xff here"}},
		{"a timestamp past PostgreSQL's range", time.UnixMilli(math.MaxInt64), &event.DeadLetter{
			Value: []byte("{}"), Reason: event.ReasonTimestampOutOfRange, Detail: strings.Repeat("é", 10000)}},
		{"the zero time of a v0 record", time.Time{}, &event.DeadLetter{Value: []byte("{}"), Reason: event.ReasonTimestampOutOfRange}},
		{"a negative timestamp", time.UnixMilli(-1), &event.DeadLetter{Value: []byte("{}"), Reason: event.ReasonTimestampOutOfRange}},
	}
	for i, c := range cases {
		c.dl.Source = event.Source{Topic: "t", Partition: 1, Offset: int64(i), Timestamp: c.ts}
		if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.InsertDeadLetters(ctx, []*event.DeadLetter{c.dl}) }); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	got, err := s.ListDeadLetters(ctx, store.DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(cases) {
		t.Fatalf("%d dead letters stored, want %d", len(got), len(cases))
	}
	byOffset := map[int64]*event.DeadLetter{}
	for _, d := range got {
		byOffset[d.Source.Offset] = d
	}
	first := byOffset[0]
	if !bytes.Equal(first.Key, cases[0].dl.Key) || !bytes.Equal(first.Value, cases[0].dl.Value) || len(first.Headers) != len(hostile) {
		t.Fatalf("bytes not kept: %+v", first)
	}
	for i, h := range hostile {
		if first.Headers[i].Key != h.Key || !bytes.Equal(first.Headers[i].Value, h.Value) {
			t.Errorf("header %d: %q=%q, want %q=%q", i, first.Headers[i].Key, first.Headers[i].Value, h.Key, h.Value)
		}
	}
	if !strings.Contains(first.Detail, `\x00`) || !strings.Contains(first.Detail, "\uFFFD") {
		t.Errorf("detail %q: NUL and the invalid byte must be shown, not stored", first.Detail)
	}
	if d := byOffset[1]; len(d.Detail) > store.MaxDeadLetterDetail || d.Source.Timestamp.Year() != 9999 {
		t.Errorf("detail of %d bytes (at most %d), timestamp %s (clamped to 9999)", len(d.Detail), store.MaxDeadLetterDetail, d.Source.Timestamp)
	}
}
