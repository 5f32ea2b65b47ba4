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
	url := skewedInbox(t, `'x' || i`)
	for _, f := range []event.InboxFilter{{Archived: event.ArchivedOnly}, {Unread: true}} {
		sqls := store.ListSQL(store.SelectRecipientRows, f)
		marks := sqls[len(sqls)-1]
		text := genericPlan(t, url, `PREPARE q(text, bigint, int, text, text) AS `+marks, `EXECUTE q('u1', 9223372036854775807, 21, '', '')`)
		part := store.DayPartition(time.Now())
		if strings.Contains(text, "recipient_id_seq") || strings.Contains(text, "Seq Scan on "+part) || !strings.Contains(text, part+"_pkey") {
			t.Errorf("%+v: the query by marks walks the recipient's rows:\n%s", f, text)
		}
	}
}

// Recounting a recipient (after retention made its cached counts stale)
// reads the (recipient_id, seq) INCLUDE (is_read) index alone: no heap
// page per notification (a recount of 100,000 took seconds that way). The index must cover the query: with bitmap scans off
// an index-only scan is possible only then. (Left on, the choice depends on
// how much of the heap VACUUM could mark all-visible, which a snapshot held
// by a concurrent test prevents.)
func TestCountsReadTheIndexAlone(t *testing.T) {
	url := skewedInbox(t, `'x' || (i % 100)`)
	plan := genericPlan(t, url, `SET enable_bitmapscan = off; PREPARE q(text) AS `+store.RecountSQL, `EXECUTE q('u1')`)
	part := store.DayPartition(time.Now())
	if !strings.Contains(plan, "Index Only Scan using "+part+"_recipient_id_seq") {
		t.Errorf("the count does not read the index alone:\n%s", plan)
	}
}

// skewedInbox stores 40,000 notifications of today: every other one is
// u1's, the rest go to the recipients named by others (an SQL expression of
// i), then analyzes them. It returns the database URL.
func skewedInbox(t *testing.T, others string) string {
	t.Helper()
	s, url := pgtest.Open(t)
	ctx := context.Background()
	today := store.DayBound(time.Now()).String()[:13]
	if err := s.EnsurePartitions(ctx, []time.Time{time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `
		INSERT INTO notifications (id, seq, recipient_id, type, actor_id, actor, content, data, occurred_at, event_key)
		SELECT overlay(gen_random_uuid()::text placing $1 from 1 for 13)::uuid, i,
		       CASE WHEN i % 2 = 0 THEN 'u1' ELSE `+others+` END, 'T', 'a', '{}', 'c', '{}', now(), '\x00'
		FROM generate_series(1, 40000) i`, today); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		t.Fatal(err)
	}
	return url
}

// genericPlan returns the generic plan of a prepared statement.
func genericPlan(t *testing.T, url, prepare, execute string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Raw simple queries: the text holds $n placeholders of PREPARE.
	results, err := conn.PgConn().Exec(ctx, `SET plan_cache_mode = force_generic_plan; `+prepare+`; EXPLAIN `+execute).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for _, row := range results[len(results)-1].Rows {
		plan = append(plan, string(row[0]))
	}
	return strings.Join(plan, "\n")
}
