package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// What only marks decide (archived; unread below read_wm) is read through
// the marks and the primary key: a plan that walked the recipient's rows —
// all 100,000 of a busy inbox — to find the few marked ones must not be
// possible, whatever the statistics say. A generic plan expects each
// recipient to have the average number of rows (here 2, u1 has 20,000).
func TestListingsByMarksNeverWalkTheRecipientsRows(t *testing.T) {
	s, url := pgtest.Open(t)
	ctx := context.Background()
	today := store.DayBound(time.Now()).String()[:13]
	if err := s.EnsurePartitions(ctx, []time.Time{time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `
		INSERT INTO notifications (id, seq, recipient_id, type, actor_id, actor, content, data, occurred_at, event_key)
		SELECT overlay(gen_random_uuid()::text placing $1 from 1 for 13)::uuid, i,
		       CASE WHEN i % 2 = 0 THEN 'u1' ELSE 'x' || i END, 'T', 'a', '{}', 'c', '{}', now(), '\x00'
		FROM generate_series(1, 40000) i`, today); err != nil {
		t.Fatal(err)
	}
	s.Pool.Exec(ctx, `ANALYZE`)
	for _, f := range []event.InboxFilter{{Archived: event.ArchivedOnly}, {Unread: true}} {
		sqls := store.ListSQL(store.SelectRecipientRows, f)
		marks := sqls[len(sqls)-1]
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		// Raw simple queries: the text holds $n placeholders of PREPARE.
		results, err := conn.PgConn().Exec(ctx, `SET plan_cache_mode = force_generic_plan;
			PREPARE q(text, bigint, int, text, text) AS `+marks+`;
			EXPLAIN EXECUTE q('u1', 9223372036854775807, 21, '', '')`).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for _, row := range results[len(results)-1].Rows {
			plan = append(plan, string(row[0]))
		}
		conn.Close(ctx)
		text := strings.Join(plan, "\n")
		part := store.DayPartition(time.Now())
		if strings.Contains(text, "recipient_id_seq") || strings.Contains(text, "Seq Scan on "+part) || !strings.Contains(text, part+"_pkey") {
			t.Errorf("%+v: the query by marks walks the recipient's rows:\n%s", f, text)
		}
	}
}
