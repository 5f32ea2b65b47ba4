package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// Issue 20, items 3 and 4: a partition was made for any record timestamp
// (2,000 of them made every inbox query 1,500 times slower), and a negative
// one failed for ever (an empty range).
func TestPartitionsAreMadeOnlyWithinTheWindowAndStraysAreRemoved(t *testing.T) {
	s, _ := pgtest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	today := now.Truncate(store.Day)
	before := partitionNames(t, s)

	// Far ahead, before 1970, at 1970 itself (a wrapped id would be
	// thousands of years ahead): no partition, no error.
	for _, ts := range []time.Time{today.Add(400 * store.Day), time.UnixMilli(-1), time.Time{}, today.Add((store.MaxDaysAhead + 1) * store.Day)} {
		if err := s.EnsurePartitions(ctx, []time.Time{ts}); err != nil {
			t.Errorf("EnsurePartitions(%s): %v", ts, err)
		}
	}
	if after := partitionNames(t, s); !slices.Equal(after, before) {
		t.Fatalf("partitions made outside the window: %v, before %v", after, before)
	}
	// The furthest day ingest may reach still gets its partition.
	edge := today.Add(store.MaxDaysAhead * store.Day)
	if err := s.EnsurePartitions(ctx, []time.Time{edge}); err != nil || !slices.Contains(partitionNames(t, s), store.DayPartition(edge)) {
		t.Fatalf("no partition for %s (MaxDaysAhead): %v", edge, err)
	}

	// Strays an earlier version made: removed by Maintain with their rows;
	// the days Maintain keeps ahead stay.
	var strays []string
	for _, d := range []time.Duration{store.MaxDaysAhead + 2, 30, 3000} {
		day := today.Add(d * store.Day)
		name := store.DayPartition(day)
		_, err := s.Pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE %[1]s (LIKE notifications INCLUDING DEFAULTS);
			ALTER TABLE notifications ATTACH PARTITION %[1]s FOR VALUES FROM ('%[2]s') TO ('%[3]s')`,
			pgx.Identifier{name}.Sanitize(), store.DayBound(day), store.DayBound(day.Add(store.Day))))
		if err != nil {
			t.Fatal(err)
		}
		strays = append(strays, name)
		if err := s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.InsertNotifications(ctx, rowsFor(event.Source{Topic: "t", Offset: int64(d), Timestamp: day.Add(time.Hour)}, "u1"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.Maintain(ctx, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Strays, strays) || res.StrayRows != 3 {
		t.Errorf("strays removed %v with %d rows, want %v with 3", res.Strays, res.StrayRows, strays)
	}
	names := partitionNames(t, s)
	for d := time.Duration(0); d <= store.PartitionAhead; d++ {
		if !slices.Contains(names, store.DayPartition(today.Add(d*store.Day))) {
			t.Errorf("day +%d has no partition after Maintain: %v", d, names)
		}
	}
	for _, name := range strays {
		if slices.Contains(names, name) || count(t, s, `SELECT count(*) FROM pg_class WHERE relname = $1`, name) != 0 {
			t.Errorf("stray %s still there", name)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM notifications`); n != 0 {
		t.Errorf("%d rows left", n)
	}
}
