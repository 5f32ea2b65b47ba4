package store_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// dayRows stores n notifications of recipient whose records are stamped at.
func dayRows(t *testing.T, s *store.Store, recipient string, at time.Time, first, n int) []*event.Row {
	t.Helper()
	var rows []*event.Row
	for i := 0; i < n; i++ {
		rows = append(rows, rowsFor(event.Source{Topic: "t", Offset: int64(first + i), Timestamp: at}, recipient)...)
	}
	insert(t, s, rows)
	return rows
}

func partitionNames(t *testing.T, s *store.Store) []string {
	t.Helper()
	parts, err := s.Partitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range parts {
		out = append(out, p.Name)
	}
	return out
}

func count(t *testing.T, s *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestDayBoundsFollowTheRecordTime(t *testing.T) {
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	last := event.NotificationID(event.Source{Topic: "t", Timestamp: day.Add(store.Day - time.Millisecond)}, "u1")
	first := event.NotificationID(event.Source{Topic: "t", Timestamp: day}, "u1")
	lo, hi := store.DayBound(day), store.DayBound(day.Add(store.Day))
	in := func(id [16]byte) bool { return string(lo[:]) <= string(id[:]) && string(id[:]) < string(hi[:]) }
	if !in(first) || !in(last) {
		t.Errorf("ids of the day's first and last millisecond must sort in [%s, %s): %s %s", lo, hi, first, last)
	}
	if next := event.NotificationID(event.Source{Topic: "t", Timestamp: day.Add(store.Day)}, "u1"); in(next) {
		t.Errorf("the next day's first id %s sorts into the day", next)
	}
	if got := store.TimeOfID(last); !got.Equal(day.Add(store.Day - time.Millisecond)) {
		t.Errorf("TimeOfID = %s", got)
	}
	if store.DayPartition(day.Add(23*time.Hour)) != "notifications_20261127" {
		t.Errorf("name %s", store.DayPartition(day))
	}
}

func TestMaintainRemovesWholeDaysPastTheRetentionAndNothingElseWhileRowsArrive(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	old := dayRows(t, s, "u1", now.Add(-10*store.Day), 0, 300)   // in the cached counts
	older := dayRows(t, s, "u1", now.Add(-7*store.Day), 1000, 2) // its day ends before now − 4 days − 1 h, whatever the hour
	kept := dayRows(t, s, "u1", now.Add(-2*store.Day), 2000, 2)
	mustMark(t, s, "u1", event.OpRead, old[0].ID, kept[0].ID)
	if c := counts(t, s, "u1"); c.Total != 304 {
		t.Fatalf("counts before %+v", c)
	}
	if c := counts(t, s, "u1"); c.Unread != 302 {
		t.Fatalf("counts before %+v", c)
	}

	// Ingest goes on meanwhile, in transactions of its own.
	stop := make(chan struct{})
	var inserted atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			rows := rowsFor(event.Source{Topic: "live", Offset: int64(i), Timestamp: time.Now()}, "u1", "u2")
			if err := s.EnsurePartitions(ctx, []time.Time{time.Now()}); err != nil {
				t.Error(err)
				return
			}
			err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.InsertNotifications(ctx, rows); return err })
			if err != nil {
				t.Errorf("insert while maintaining: %v", err)
				return
			}
			inserted.Add(2)
		}
	}()
	res, err := s.Maintain(ctx, now, 4*store.Day)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	gone := []string{store.DayPartition(old[0].Source.Timestamp), store.DayPartition(older[0].Source.Timestamp)}
	if !slices.Equal(res.Dropped, gone) || res.Skipped || res.Marks != 1 {
		t.Errorf("maintain %+v, want %v dropped and 1 mark with them", res, gone)
	}
	names := partitionNames(t, s)
	for d := 0; d <= store.PartitionAhead; d++ {
		if want := store.DayPartition(now.Add(time.Duration(d) * store.Day)); !slices.Contains(names, want) {
			t.Errorf("no partition %s ahead: %v", want, names)
		}
	}
	for _, g := range gone {
		if slices.Contains(names, g) {
			t.Errorf("%s still attached", g)
		}
		if n := count(t, s, `SELECT count(*) FROM pg_class WHERE relname = $1`, g); n != 0 {
			t.Errorf("%s still exists", g)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM notifications WHERE source_topic = 't'`); n != 2 {
		t.Errorf("%d rows of the test's days left, want the 2 kept", n)
	}
	if n := count(t, s, `SELECT count(*) FROM notifications WHERE source_topic = 'live'`); n != int(inserted.Load()) || n == 0 {
		t.Errorf("%d rows stored meanwhile, %d inserted", n, inserted.Load())
	}
	if n := count(t, s, `SELECT count(*) FROM notification_marks`); n != 1 {
		t.Errorf("%d marks left, want kept[0]'s", n)
	}
	if got, want := counts(t, s, "u1"), recount(t, s, "u1"); got != want {
		t.Errorf("counts after the removal %+v, recount %+v: the cache must not count removed rows", got, want)
	}
	again, err := s.Maintain(ctx, now, 4*store.Day)
	if err != nil || len(again.Dropped) != 0 || len(again.Created) != 0 || again.Deleted != 0 {
		t.Errorf("a second run did %+v, %v", again, err)
	}
}

func TestOnlyOneInstanceMaintainsAtATime(t *testing.T) {
	s, url := pgtest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	old := dayRows(t, s, "u1", now.Add(-10*store.Day), 0, 1)
	other, err := pgx.Connect(ctx, url) // another instance, maintaining
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	if _, err := other.Exec(ctx, `SELECT pg_advisory_lock($1)`, store.MaintenanceLockKey); err != nil {
		t.Fatal(err)
	}
	res, err := s.Maintain(ctx, now, store.Day)
	if err != nil || !res.Skipped || len(res.Dropped) != 0 || len(res.Created) != 0 {
		t.Fatalf("while another instance maintains: %+v, %v", res, err)
	}
	if !slices.Contains(partitionNames(t, s), store.DayPartition(old[0].Source.Timestamp)) {
		t.Fatal("removed while another instance held the lock")
	}
	if _, err := other.Exec(ctx, `SELECT pg_advisory_unlock($1)`, store.MaintenanceLockKey); err != nil {
		t.Fatal(err)
	}
	if res, err = s.Maintain(ctx, now, store.Day); err != nil || res.Skipped || len(res.Dropped) != 1 {
		t.Fatalf("once free: %+v, %v", res, err)
	}
	// The lock is released after each run: the other instance can take it.
	var locked bool
	if err := other.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, store.MaintenanceLockKey).Scan(&locked); err != nil || !locked {
		t.Errorf("the lock was kept after Maintain: %v %v", locked, err)
	}
}

func TestADetachThatWasInterruptedIsFinished(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	old := dayRows(t, s, "u1", now.Add(-10*store.Day), 0, 1)
	name := store.DayPartition(old[0].Source.Timestamp)
	// A DETACH CONCURRENTLY cut between its two transactions leaves the
	// partition "detach pending"; simulate it with a session that holds
	// a snapshot on the partition, and cancel the detach.
	reader, _ := s.Pool.Acquire(ctx)
	defer reader.Release()
	tx, _ := reader.Begin(ctx)
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`); err != nil {
		t.Fatal(err)
	}
	var n int
	tx.QueryRow(ctx, `SELECT count(*) FROM notifications`).Scan(&n)
	// The server cancels it (statement_timeout) while it waits for that
	// snapshot, in its second transaction.
	detacher, _ := s.Pool.Acquire(ctx)
	defer detacher.Release()
	if _, err := detacher.Exec(ctx, `SET statement_timeout = '300ms'`); err != nil {
		t.Fatal(err)
	}
	_, err := detacher.Exec(ctx, `ALTER TABLE notifications DETACH PARTITION `+name+` CONCURRENTLY`)
	detacher.Exec(ctx, `RESET statement_timeout`)
	if err == nil {
		t.Fatal("the detach finished despite the open snapshot")
	}
	tx.Rollback(ctx)
	parts, _ := s.Partitions(ctx)
	i := slices.IndexFunc(parts, func(p store.Partition) bool { return p.Name == name })
	if i < 0 || !parts[i].Detaching {
		t.Fatalf("%s is not pending detach: %+v", name, parts)
	}
	res, err := s.Maintain(ctx, now, store.Day)
	if err != nil || !slices.Contains(res.Dropped, name) {
		t.Fatalf("maintain %+v, %v", res, err)
	}
	// A run that detached a day and stopped before dropping it leaves a
	// plain table: the next run drops it.
	old = dayRows(t, s, "u1", now.Add(-9*store.Day), 10, 1)
	name = store.DayPartition(old[0].Source.Timestamp)
	if _, err := s.Pool.Exec(ctx, `ALTER TABLE notifications DETACH PARTITION `+name); err != nil {
		t.Fatal(err)
	}
	if res, err = s.Maintain(ctx, now, store.Day); err != nil || !slices.Equal(res.Dropped, []string{name}) {
		t.Fatalf("maintain %+v, %v", res, err)
	}
	if n := count(t, s, `SELECT count(*) FROM pg_class WHERE relname = $1`, name); n != 0 {
		t.Errorf("%s still exists", name)
	}
}

// A database of the version before 0006 with rows: the migrations keep
// them, attach them as the legacy partition (whose expired rows are then
// deleted in batches), and going down brings back one plain table with the
// read states folded into is_read and deleted notifications deleted.
func TestMigrationsUpAndDownOnADatabaseHoldingRows(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	m, err := store.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.UpTo(5); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, url, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	// Rows as the version before stored them (seq from the identity).
	var rows []*event.Row
	for i, at := range []time.Time{now.Add(-10 * store.Day), now.Add(-10 * store.Day), now.Add(-time.Hour), now.Add(-time.Hour), now} {
		rows = append(rows, rowsFor(event.Source{Topic: "t", Offset: int64(i), Timestamp: at}, "u1")...)
	}
	for i, r := range rows {
		if _, err := s.Pool.Exec(ctx, `INSERT INTO notifications (id, recipient_id, type, actor_id, actor, content, data, occurred_at, event_key, is_read)
			VALUES ($1, $2, 'T', 'a', '{}', 'c', '{}', now(), '\x00', $3)`, r.ID, r.RecipientID, i == 1); err != nil {
			t.Fatal(err)
		}
	}

	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	parts, err := s.Partitions(ctx)
	if err != nil || parts[0].Name != "notifications_legacy" || parts[0].From != nil ||
		!store.TimeOfID(*parts[0].To).After(now.Add(store.Day)) || len(parts) != 8 {
		t.Fatalf("partitions after up: %+v, %v", parts, err)
	}
	if n := count(t, s, `SELECT count(*) FROM notifications_legacy`); n != 5 {
		t.Fatalf("legacy partition holds %d rows, want 5", n)
	}
	if st := statesOf(t, s, "u1", rows[1].ID); !st.Read || !st.Seen {
		t.Errorf("a row read before the migration is %+v", st)
	}
	if c := counts(t, s, "u1"); c != (event.Counts{Unread: 4, Unseen: 4, Total: 5}) {
		t.Errorf("counts after up %+v", c)
	}
	// The new version at work: states, and a row of a day past the bound.
	mustMark(t, s, "u1", event.OpRead, rows[2].ID)
	mustMark(t, s, "u1", event.OpDelete, rows[3].ID)
	later := dayRows(t, s, "u1", now.Add(4*store.Day), 100, 1)
	// Retention: the legacy partition straddles the cutoff, so its expired
	// rows go by batched DELETEs; the partition stays.
	res, err := s.Maintain(ctx, now, 5*store.Day)
	if err != nil || res.Deleted != 2 || len(res.Dropped) != 0 {
		t.Fatalf("maintain %+v, %v", res, err)
	}
	if n := count(t, s, `SELECT count(*) FROM notifications`); n != 4 {
		t.Errorf("%d rows after retention, want 4", n)
	}

	if err := m.UpTo(5); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'notifications'::regclass`); n != 0 {
		t.Errorf("still partitioned after down")
	}
	var read []bool
	r, _ := s.Pool.Query(ctx, `SELECT is_read FROM notifications ORDER BY seq`)
	read, err = pgx.CollectRows(r, pgx.RowTo[bool])
	if err != nil || !slices.Equal(read, []bool{true, false, false}) {
		t.Errorf("after down: is_read %v, %v; want rows 2 (read), 4 and the later one, deleted row 3 gone", read, err)
	}
	var def string
	s.Pool.QueryRow(ctx, `SELECT pg_get_indexdef('notifications_recipient_seq'::regclass)`).Scan(&def)
	if !strings.Contains(def, "UNIQUE") {
		t.Errorf("index after down: %s", def)
	}
	// The version before could write again (seq from the identity).
	if _, err := s.Pool.Exec(ctx, `INSERT INTO notifications (id, recipient_id, type, actor_id, actor, content, data, occurred_at, event_key)
		VALUES (gen_random_uuid(), 'u9', 'T', 'a', '{}', 'c', '{}', now(), '\x00')`); err != nil {
		t.Errorf("insert after down: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM notifications WHERE id = $1`, later[0].ID); n != 1 {
		t.Error("the row of a day partition was not kept")
	}
	if err := m.Up(); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM notifications`); n != 4 {
		t.Errorf("%d rows after up again, want 4", n)
	}
}
