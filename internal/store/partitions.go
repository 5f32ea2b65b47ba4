package store

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// notifications is partitioned by range of id, one partition per UTC day
// (migration 0007). An id's first 48 bits are its Kafka record's timestamp
// in milliseconds (event.NotificationID), so the partition of a row follows
// from its record: a redelivered record always meets the row it made.
//
// Partitions are made ahead of time by Maintain and, for a record whose day
// has none yet (a producer's clock ahead, a replay of old records), by
// EnsurePartitions in a short transaction of its own, before the ingest
// transaction: never DDL inside ingest. There is no DEFAULT partition: every
// new range would have to scan it, and DETACH … CONCURRENTLY refuses tables
// that have one.

// Day is one UTC day.
const Day = 24 * time.Hour

// PartitionAhead is how many days ahead of today Maintain keeps partitions.
const PartitionAhead = 7

// MaxDaysAhead is the furthest day after today a partition is ever made
// for. Ingest refuses records further ahead than ingest.max_clock_skew (at
// most PartitionAhead days), EnsurePartitions makes none beyond it (nor
// before 1970), and Maintain removes partitions that start a day later
// still (strays: made by an earlier version, or by hand).
const MaxDaysAhead = PartitionAhead + 1

// epochDay is the first day a partition may be made for: an id's time is
// an unsigned count of milliseconds since 1970.
var epochDay = time.Unix(0, 0).UTC()

// DayBound is the smallest id of day t's partition (t's UTC day): its
// first millisecond followed by zeros. Ids of the day sort at or above it,
// those of the next day at or above DayBound(t + 24h).
func DayBound(t time.Time) uuid.UUID {
	ms := uint64(t.UTC().Truncate(Day).UnixMilli())
	var id uuid.UUID
	for i := 0; i < 6; i++ {
		id[i] = byte(ms >> (40 - 8*i))
	}
	return id
}

// TimeOfID is the record time an id starts with (millisecond precision).
func TimeOfID(id uuid.UUID) time.Time {
	var ms int64
	for i := 0; i < 6; i++ {
		ms = ms<<8 | int64(id[i])
	}
	return time.UnixMilli(ms).UTC()
}

// DayPartition names the partition of t's day.
func DayPartition(t time.Time) string { return "notifications_" + t.UTC().Format("20060102") }

// Partition is one partition of notifications: the ids in [From, To).
// From is nil for MINVALUE (the legacy partition, the table from before
// migration 0007).
type Partition struct {
	Name     string
	From, To *uuid.UUID
	// Detaching: a DETACH … CONCURRENTLY did not finish (Maintain ends it).
	Detaching bool
}

func (p Partition) holds(id uuid.UUID) bool {
	return (p.From == nil || compareIDs(*p.From, id) <= 0) && (p.To == nil || compareIDs(id, *p.To) < 0)
}

func compareIDs(a, b uuid.UUID) int { return strings.Compare(string(a[:]), string(b[:])) }

var boundPattern = regexp.MustCompile(`FROM \((MINVALUE|'[0-9a-f-]+')\) TO \((MAXVALUE|'[0-9a-f-]+')\)`)

// Partitions lists the partitions of notifications, oldest first.
func (s *Store) Partitions(ctx context.Context) ([]Partition, error) {
	return listPartitions(ctx, s.Pool)
}

func listPartitions(ctx context.Context, q querier) ([]Partition, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), i.inhdetachpending
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'notifications'::regclass`)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	defer rows.Close()
	var out []Partition
	for rows.Next() {
		var p Partition
		var bound string
		if err := rows.Scan(&p.Name, &bound, &p.Detaching); err != nil {
			return nil, fmt.Errorf("list partitions: %w", err)
		}
		m := boundPattern.FindStringSubmatch(bound)
		if m == nil {
			return nil, fmt.Errorf("partition %s: unexpected bound %q", p.Name, bound)
		}
		for i, dst := range []**uuid.UUID{&p.From, &p.To} {
			if v := m[i+1]; v != "MINVALUE" && v != "MAXVALUE" {
				id, err := uuid.Parse(strings.Trim(v, "'"))
				if err != nil {
					return nil, fmt.Errorf("partition %s: bound %q: %w", p.Name, v, err)
				}
				*dst = &id
			}
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].From, out[j].From
		return a == nil && b != nil || a != nil && b != nil && compareIDs(*a, *b) < 0
	})
	return out, nil
}

// partitionCache remembers which partitions exist, so that ingest asks the
// catalog only for a day it has not met.
type partitionCache struct {
	mu    sync.Mutex
	parts []Partition
}

func (c *partitionCache) covers(id uuid.UUID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.parts {
		if !p.Detaching && p.holds(id) {
			return true
		}
	}
	return false
}

func (c *partitionCache) set(parts []Partition) {
	c.mu.Lock()
	c.parts = parts
	c.mu.Unlock()
}

// EnsurePartitions makes sure a partition holds the ids of records with
// these timestamps, creating the missing days, each in a short transaction
// of its own. Known days cost no query.
//
// Days before 1970 or more than MaxDaysAhead after today get none: an
// insert of such a row then fails as a constraint violation, which makes a
// dead letter of its record rather than a partition per day an attacker
// picks (ingest refuses those records before; this is the backstop).
func (s *Store) EnsurePartitions(ctx context.Context, times []time.Time) error {
	var missing []time.Time
	last := time.Now().UTC().Truncate(Day).Add(MaxDaysAhead * Day)
	for _, t := range times {
		day := t.UTC().Truncate(Day)
		if day.Before(epochDay) || day.After(last) {
			continue
		}
		if !s.parts.covers(DayBound(day)) && !slices.Contains(missing, day) {
			missing = append(missing, day)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return s.createDays(ctx, s.Pool, missing)
}

type execQuerier interface {
	querier
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// createDays creates the partitions of days no partition covers yet.
func (s *Store) createDays(ctx context.Context, q execQuerier, days []time.Time) error {
	parts, err := listPartitions(ctx, q)
	if err != nil {
		return err
	}
	s.parts.set(parts)
	for _, day := range days {
		if s.parts.covers(DayBound(day)) {
			continue
		}
		if err := createDay(ctx, q, day); err != nil {
			// Another instance may have made it meanwhile.
			if parts, lerr := listPartitions(ctx, q); lerr == nil {
				s.parts.set(parts)
				if s.parts.covers(DayBound(day)) {
					continue
				}
			}
			return err
		}
		if parts, err = listPartitions(ctx, q); err != nil {
			return err
		}
		s.parts.set(parts)
	}
	return nil
}

// createDay adds day's partition: a new table, then ATTACH, which takes
// SHARE UPDATE EXCLUSIVE on notifications — reads and writes go on —
// where CREATE TABLE … PARTITION OF would take ACCESS EXCLUSIVE. The table
// is empty, so ATTACH has nothing to check; it builds the (empty) indexes.
func createDay(ctx context.Context, q execQuerier, day time.Time) error {
	name := pgx.Identifier{DayPartition(day)}.Sanitize()
	from, to := DayBound(day), DayBound(day.Add(Day))
	// One simple-protocol query: one transaction.
	_, err := q.Exec(ctx, fmt.Sprintf(`
		SET LOCAL lock_timeout = '5s';
		CREATE TABLE %[1]s (LIKE notifications INCLUDING DEFAULTS);
		ALTER TABLE notifications ATTACH PARTITION %[1]s FOR VALUES FROM ('%[2]s') TO ('%[3]s')`, name, from, to))
	if err != nil {
		return fmt.Errorf("create partition %s: %w", DayPartition(day), err)
	}
	return nil
}

// MaintenanceLockKey is the advisory lock of the instance that maintains
// partitions: one at a time.
const MaintenanceLockKey int64 = 0x5167_6e61_6c00_0003

// MaintainResult says what one Maintain run did.
type MaintainResult struct {
	// Skipped: another instance holds the maintenance lock.
	Skipped bool
	Created []string // partitions created
	Dropped []string // partitions removed whole
	// Strays are partitions removed because they start more than
	// MaxDaysAhead + 1 days ahead of today, with StrayRows rows in all.
	Strays    []string
	StrayRows int64
	// Deleted counts rows deleted from the legacy partition, which holds
	// days on both sides of the cutoff.
	Deleted int64
	// Marks counts state marks removed with their notifications.
	Marks int64
	// Changes counts stream changes (inbox_changes) removed.
	Changes int64
}

// legacyBatch is how many rows of the legacy partition one DELETE removes.
const legacyBatch = 5000

// RetentionMargin is how much longer than the retention a day is kept:
// ingest skips records older than the retention by its own clock, so a
// day whose rows could still be written is never removed while instance
// clocks agree within this margin.
const RetentionMargin = time.Hour

// Maintain keeps the partitions of notifications: it creates those of the
// next PartitionAhead days and, with retention > 0, removes every day that
// lies entirely before now − retention − RetentionMargin: partitions are
// detached (CONCURRENTLY: reads and writes go on) and dropped; the legacy
// partition, which straddles the cutoff, loses those rows by batched
// DELETEs. Removing rows makes every cached count stale (the epoch moves).
//
// Only one instance maintains at a time (a session advisory lock taken
// without waiting): the others get Skipped. Maintain never runs inside
// ingest, and ingest never waits for it beyond the short lock of an ATTACH.
func (s *Store) Maintain(ctx context.Context, now time.Time, retention time.Duration) (MaintainResult, error) {
	var res MaintainResult
	locked, err := s.withMaintenanceLock(ctx, func(c *pgx.Conn) error {
		return s.maintain(ctx, c, now, retention, &res)
	})
	res.Skipped = !locked && err == nil
	return res, err
}

// withMaintenanceLock runs f on a connection holding the maintenance lock,
// taken without waiting: locked is false, and f not run, when another
// session holds it.
func (s *Store) withMaintenanceLock(ctx context.Context, f func(*pgx.Conn) error) (locked bool, err error) {
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("maintain partitions: %w", err)
	}
	defer conn.Release()
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, MaintenanceLockKey).Scan(&locked); err != nil {
		return false, fmt.Errorf("maintain partitions: %w", err)
	}
	if !locked {
		return false, nil
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, MaintenanceLockKey); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // the lock ends with the session
		}
	}()
	return true, f(conn.Conn())
}

// maintain is Maintain under the lock: the days ahead created, strays and
// (with retention > 0) the days before the cutoff removed, into res.
func (s *Store) maintain(ctx context.Context, c *pgx.Conn, now time.Time, retention time.Duration, res *MaintainResult) error {
	today := now.UTC().Truncate(Day)
	parts, err := s.ensureDays(ctx, c, today, res)
	if err != nil {
		return err
	}
	if retention <= 0 {
		if len(res.Strays) > 0 {
			return s.afterRemoval(ctx, c)
		}
		return nil
	}
	// Whole days before the cutoff's day go.
	cutoff := DayBound(now.Add(-retention - RetentionMargin))
	if err := removeBefore(ctx, c, parts, cutoff, res); err != nil {
		return err
	}
	if res.Marks, err = deleteBelow(ctx, c, "notification_marks", cutoff); err != nil {
		return err
	}
	if res.Changes, err = deleteChangesBefore(ctx, c, TimeOfID(cutoff)); err != nil {
		return err
	}
	if len(res.Dropped) > 0 || res.Deleted > 0 || len(res.Strays) > 0 {
		return s.afterRemoval(ctx, c)
	}
	return nil
}

// ensureDays creates the partitions of today and the PartitionAhead days
// after it, drops the strays, and returns the partitions then attached.
func (s *Store) ensureDays(ctx context.Context, c *pgx.Conn, today time.Time, res *MaintainResult) ([]Partition, error) {
	before, err := listPartitions(ctx, c)
	if err != nil {
		return nil, err
	}
	var days []time.Time
	for d := 0; d <= PartitionAhead; d++ {
		days = append(days, today.Add(time.Duration(d)*Day))
	}
	if err := s.createDays(ctx, c, days); err != nil {
		return nil, err
	}
	after, err := listPartitions(ctx, c)
	if err != nil {
		return nil, err
	}
	res.Created = newNames(before, after)
	if err := dropStrays(ctx, c, today, after, res); err != nil {
		return nil, err
	}
	return after, nil
}

// removeBefore drops the partitions of parts that end at or before cutoff,
// deletes the rows below it from the one that straddles it (only the
// legacy partition can), and drops the days a run detached but did not
// drop.
func removeBefore(ctx context.Context, c *pgx.Conn, parts []Partition, cutoff uuid.UUID, res *MaintainResult) error {
	for _, p := range parts {
		switch {
		case p.To != nil && compareIDs(*p.To, cutoff) <= 0:
			if err := dropPartition(ctx, c, p); err != nil {
				return err
			}
			res.Dropped = append(res.Dropped, p.Name)
		case p.From == nil || compareIDs(*p.From, cutoff) < 0:
			n, err := deleteBelow(ctx, c, pgx.Identifier{p.Name}.Sanitize(), cutoff)
			res.Deleted += n
			if err != nil {
				return err
			}
		}
	}
	// A day detached by a run that stopped before its DROP.
	orphans, err := orphanDays(ctx, c)
	if err != nil {
		return err
	}
	for _, name := range orphans {
		if name < DayPartition(TimeOfID(cutoff)) {
			if _, err := c.Exec(ctx, `DROP TABLE `+pgx.Identifier{name}.Sanitize()); err != nil {
				return fmt.Errorf("drop detached partition %s: %w", name, err)
			}
			res.Dropped = append(res.Dropped, name)
		}
	}
	return nil
}

// afterRemoval makes every cached count stale (rows were removed) and
// refreshes the partitions known.
func (s *Store) afterRemoval(ctx context.Context, c *pgx.Conn) error {
	if _, err := c.Exec(ctx, `UPDATE inbox_epoch SET epoch = epoch + 1`); err != nil {
		return fmt.Errorf("invalidate cached counts: %w", err)
	}
	if parts, err := listPartitions(ctx, c); err == nil {
		s.parts.set(parts)
	}
	return nil
}

// dropStrays removes the partitions that start more than MaxDaysAhead + 1
// days after today (a day of margin for instance clocks). No version that
// bounds timestamps makes them; an earlier one made one for any record
// timestamp, and every inbox query visits every partition.
func dropStrays(ctx context.Context, c *pgx.Conn, today time.Time, parts []Partition, res *MaintainResult) error {
	limit := DayBound(today.Add((MaxDaysAhead + 2) * Day))
	for _, p := range parts {
		if p.From == nil || compareIDs(*p.From, limit) < 0 {
			continue
		}
		var n int64
		if err := c.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{p.Name}.Sanitize()).Scan(&n); err != nil {
			return fmt.Errorf("count rows of stray partition %s: %w", p.Name, err)
		}
		if err := dropPartition(ctx, c, p); err != nil {
			return err
		}
		res.Strays = append(res.Strays, p.Name)
		res.StrayRows += n
	}
	return nil
}

// deleteChangesBefore removes the stream changes (inbox_changes) made
// before t, in batches: a client resuming from before them gets a reset.
// The Idempotency-Keys of POST /notifications go with them: their
// notifications are past the retention too.
func deleteChangesBefore(ctx context.Context, c *pgx.Conn, t time.Time) (int64, error) {
	if _, err := c.Exec(ctx, `DELETE FROM notify_requests WHERE created_at < $1`, t); err != nil {
		return 0, fmt.Errorf("remove old idempotency keys: %w", err)
	}
	if _, err := c.Exec(ctx, `DELETE FROM group_joins WHERE created_at < $1`, t); err != nil {
		return 0, fmt.Errorf("remove old group joins: %w", err)
	}
	var n int64
	for {
		tag, err := c.Exec(ctx, `DELETE FROM inbox_changes WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM inbox_changes WHERE created_at < $1 LIMIT 10000))`, t)
		if err != nil {
			return n, fmt.Errorf("remove old stream changes: %w", err)
		}
		n += tag.RowsAffected()
		if tag.RowsAffected() < 10000 {
			return n, nil
		}
	}
}

// orphanDays lists day tables that are not partitions (any more).
func orphanDays(ctx context.Context, c *pgx.Conn) ([]string, error) {
	rows, err := c.Query(ctx, `SELECT relname FROM pg_class
		WHERE relkind = 'r' AND NOT relispartition AND relname ~ '^notifications_[0-9]{8}$'
		  AND relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'notifications'::regclass)`)
	if err != nil {
		return nil, fmt.Errorf("list detached partitions: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func newNames(before, after []Partition) []string {
	var out []string
	for _, a := range after {
		if !slices.ContainsFunc(before, func(b Partition) bool { return b.Name == a.Name }) {
			out = append(out, a.Name)
		}
	}
	return out
}

// dropPartition detaches p without blocking reads or writes (two
// transactions; it waits for those that may still use p), then drops it.
// A detach interrupted earlier is finished first.
func dropPartition(ctx context.Context, c *pgx.Conn, p Partition) error {
	name := pgx.Identifier{p.Name}.Sanitize()
	detach := `ALTER TABLE notifications DETACH PARTITION ` + name + ` CONCURRENTLY`
	if p.Detaching {
		detach = `ALTER TABLE notifications DETACH PARTITION ` + name + ` FINALIZE`
	}
	if _, err := c.Exec(ctx, detach); err != nil {
		return fmt.Errorf("detach partition %s: %w", p.Name, err)
	}
	if _, err := c.Exec(ctx, `DROP TABLE `+name); err != nil {
		return fmt.Errorf("drop partition %s: %w", p.Name, err)
	}
	return nil
}

// deleteBelow deletes the rows of table whose id is below bound, in short
// transactions of legacyBatch rows (each walks the primary key).
func deleteBelow(ctx context.Context, c *pgx.Conn, table string, bound uuid.UUID) (int64, error) {
	var total int64
	for {
		tag, err := c.Exec(ctx, `DELETE FROM `+table+` WHERE id IN (SELECT id FROM `+table+` WHERE id < $1 ORDER BY id LIMIT $2)`,
			bound, legacyBatch)
		if err != nil {
			return total, fmt.Errorf("delete expired rows of %s: %w", table, err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < legacyBatch {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
