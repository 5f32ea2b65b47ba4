package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// A repushed or replayed frame — built from the row PostgreSQL gives back,
// whose jsonb reorders keys, adds spaces and rewrites numbers — is the
// live push's frame byte for byte (issue 27, item 9).
func TestAFrameFromTheStoredRowIsTheLiveFrame(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	datas := []string{
		`{"zeta":1,"a":2,"mid":{"longer key":true,"k":null}}`,
		`{"n":[1e2,1.50,-0,-0.0,15e-1,1.5E-3,123456789012345678901234567890,0.000]}`,
		`{"html":"<b>&amp;</b>","js":"\u2028\u2029","accent":"\u00e9t\u00e9","quote":"\"\\\/","ctl":"\t\n"}`,
		`{"deep":[[{"b":1,"a":[{"d":1,"c":2}]}]],"empty":{},"list":[]}`,
	}
	ts := time.Now().UTC().Truncate(time.Millisecond)
	var live []*event.Row
	for i, data := range datas {
		msg := fmt.Sprintf(`{"eventType":"X","recipientScope":"users","actorId":"a","actor":{"id":"a","name":"A","type":"u"},`+
			`"organizerId":"o","recipientIds":["u1"],"occurredAt":"2026-11-27T09:40:53Z","data":%s}`, data)
		d, err := event.Decode([]byte(msg))
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		src := event.Source{Topic: "t", Offset: int64(i), Timestamp: ts}
		r := rowsFor(src, "u1")[0]
		r.Data = d.Data
		live = append(live, r)
	}
	insert(t, s, live)
	var ids []uuid.UUID
	for _, r := range live {
		ids = append(ids, r.ID)
	}
	var stored []*event.Row
	if err := s.InTx(ctx, func(tx *store.Tx) error {
		var err error
		stored, err = tx.Existing(ctx, ids, ts.Add(-time.Hour))
		return err
	}); err != nil || len(stored) != len(live) {
		t.Fatalf("read back %d rows: %v", len(stored), err)
	}
	for i := range live {
		var raw string
		s.Pool.QueryRow(ctx, `SELECT data::text FROM notifications WHERE id = $1`, live[i].ID).Scan(&raw)
		var a, b event.FrameBuilder
		// The counts are the live push's (the recipient's after it), not the
		// row's: the bytes compared are the notification's.
		live[i].Counts = nil
		want, got := a.Frame(live[i]), b.Frame(stored[i])
		if string(got) != string(want) {
			t.Errorf("data %s (jsonb: %s)\nlive frame:    %s\nfrom the row:  %s", datas[i], raw, want, got)
		}
		if !json.Valid(got) {
			t.Errorf("frame %s is not JSON", got)
		}
	}
	// And the rule for numbers is PostgreSQL's own, for every form.
	for _, n := range []string{"0", "-0", "-0.0", "1.50", "1e2", "1E+2", "1.0e2", "1.50e1", "15e-1", "1.5e-3", "0e5", "-2.5E-2", "7e-20", "3.25e15"} {
		var pg string
		if err := s.Pool.QueryRow(ctx, `SELECT ($1::text)::jsonb::text`, `{"n":`+n+`}`).Scan(&pg); err != nil {
			t.Fatal(err)
		}
		if got := string(event.StoredData([]byte(`{"n":` + n + `}`))); got != string(event.StoredData([]byte(pg))) || pg != `{"n": `+got[5:len(got)-1]+`}` {
			t.Errorf("%s: PostgreSQL gives %s, the stored form %s", n, pg, got)
		}
	}
}
