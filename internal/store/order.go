package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The order of notifications, without a global lock.
//
// Readers that continue from a cursor ("newer than seq X": WebSocket replay,
// live pushes) need an order in which a row never appears behind one they
// have already passed. Concurrent writers (several instances) cannot hand
// out commit-ordered numbers without serialising on one lock, so instead:
//
//   - a row's seq is (its transaction id << SeqShift) | its rank in that
//     transaction: rows of one transaction are contiguous and ordered, and
//     transactions are ordered by their id;
//   - a writer transaction announces itself (a shared advisory lock) before
//     it has an id, so a reader can list the writers still in flight;
//   - the horizon is the smallest id of a writer still in flight, or, with
//     none, the snapshot's xmax: every transaction below it has ended, so
//     no row with a seq below SeqOf(horizon, 0) can still appear.
//
// A reader that only goes up to the horizon therefore never skips a row
// that commits late: it simply reaches it later. Shared advisory locks do
// not conflict, so writers never wait for each other; and transactions that
// do not write notifications (other applications on the server included)
// do not hold the horizon back.

// SeqShift is how many low bits of seq rank a row within its transaction.
const SeqShift = 20

// MaxRowsPerTx is the most notifications one transaction may insert.
const MaxRowsPerTx = 1 << SeqShift

// SeqOf is the seq of the row of rank i in transaction xid; SeqOf(h, 0) is
// the seq bound of horizon h.
func SeqOf(xid, i int64) int64 { return xid<<SeqShift | i }

// writerLockKey is the advisory lock every notification writer holds
// (shared) for the length of its transaction.
const writerLockKey int64 = 0x5167_6e61_6c00_0002

// beginWrite registers the transaction as a writer, then gives it its id.
// The lock must come first: a reader that does not see the lock must be
// able to assume the id, if any, is above its horizon.
func beginWrite(ctx context.Context, tx pgx.Tx) (xid int64, now time.Time, err error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock_shared($1)`, writerLockKey)
	b.Queue(`SELECT pg_current_xact_id()::text::bigint, now()`).QueryRow(func(r pgx.Row) error {
		return r.Scan(&xid, &now)
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, time.Time{}, fmt.Errorf("begin notification write: %w", err)
	}
	return xid, now, nil
}

// horizonSQL computes the horizon (a transaction id) from an upper bound
// top — the caller's own id (assigned earlier) or the snapshot's xmax,
// whichever is larger: every id below either was assigned before this
// statement read pg_stat_activity — lowered to the id of each writer
// (holder of the writer lock in this database, other than self when
// excludeSelf) still in flight.
// pg_stat_activity gives ids as 32-bit xids: each is widened by its distance
// below top; one that is not below top was assigned later and is ignored.
// Writers hold the lock before they get an id, and the caller's own id was
// assigned before pg_stat_activity is read, so a writer with a smaller id is
// always listed. $1 is the lock key.
func horizonSQL(top string, excludeSelf bool) string {
	return `(WITH ` + writersCTE(top, excludeSelf) + `
	SELECT coalesce((SELECT min(xid) FROM v), s.top) FROM s)`
}

// writersCTE defines s (one row: top) and v (the ids of the writers in
// flight below top), as horizonSQL describes.
func writersCTE(top string, excludeSelf bool) string {
	self := ""
	if excludeSelf {
		self = "AND l.pid <> pg_backend_pid()"
	}
	return `s AS MATERIALIZED (
		SELECT greatest(` + top + `, pg_snapshot_xmax(pg_current_snapshot())::text::bigint) AS top
	),
	w AS (
		SELECT ((s.top % 4294967296) - a.backend_xid::text::bigint + 4294967296) % 4294967296 AS back
		FROM s, pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 ` + self + `
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid::bigint = ($1::bigint >> 32)
		  AND l.objid::bigint = ($1::bigint & 4294967295)
		  AND a.backend_xid IS NOT NULL
	),
	v AS (SELECT s.top - w.back AS xid FROM s, w WHERE w.back > 0 AND w.back < 2147483648)`
}

// commitMarkerSQL is a writer's marker (NotifyHorizon): its horizon h, and
// the top and the writers in flight (other than itself) h was computed
// from. A listener that hears, later, that those writers have committed
// (their own markers) can move the horizon up to top without a tick — the
// common case with several instances, whose writers overlap.
var commitMarkerSQL = `SELECT pg_notify($2, $3 || '"h":' || m.h || ',"tp":' || m.top || ',"w":[' || m.ws || '],"x":' || pg_current_xact_id()::text || '}')
	FROM (WITH ` + writersCTE(`pg_current_xact_id()::text::bigint + 1`, true) + `
		SELECT s.top, coalesce((SELECT min(xid) FROM v), s.top) AS h,
		       coalesce((SELECT string_agg(xid::text, ',' ORDER BY xid) FROM v), '') AS ws FROM s) m`

var (
	// tickHorizon is bounded by the tick's own id (assigned by an earlier
	// statement of its transaction).
	tickHorizon = horizonSQL(`pg_current_xact_id()::text::bigint`, false)
)

// Horizon returns the current horizon: every notification with a seq below
// SeqOf(Horizon, 0) is committed (or never will be).
func (s *Store) Horizon(ctx context.Context) (int64, error) {
	h, _, err := s.horizon(ctx, "", "")
	return h, err
}

// Tick sends the current horizon to every listener of channel, as the
// payload prefix + `"h":H,"x":X}` where X is the tick's own transaction id
// (X >= H). NOTIFYs are delivered in commit order: a listener gets a tick
// only after the notifications of every transaction that ended before the
// tick computed its horizon. It returns H and X.
func (s *Store) Tick(ctx context.Context, channel, prefix string) (h, x int64, err error) {
	return s.horizon(ctx, channel, prefix)
}

// horizon runs as one round trip: a batch is one implicit transaction.
func (s *Store) horizon(ctx context.Context, channel, prefix string) (h, x int64, err error) {
	b := &pgx.Batch{}
	// Nothing of value is written: do not wait for the disk.
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	b.Queue(`SELECT pg_current_xact_id()::text::bigint`).QueryRow(func(r pgx.Row) error { return r.Scan(&x) })
	if channel == "" {
		b.Queue(`SELECT `+tickHorizon, writerLockKey).QueryRow(func(r pgx.Row) error { return r.Scan(&h) })
	} else {
		b.Queue(`SELECT t.h FROM (SELECT `+tickHorizon+` AS h) t,
			LATERAL pg_notify($2, $3 || '"h":' || t.h || ',"x":' || pg_current_xact_id()::text || '}')`,
			writerLockKey, channel, prefix).QueryRow(func(r pgx.Row) error { return r.Scan(&h) })
	}
	if err := s.Pool.SendBatch(ctx, b).Close(); err != nil {
		return 0, 0, fmt.Errorf("horizon: %w", err)
	}
	return h, x, nil
}

// NotifyHorizon sends, when the write transaction commits, the horizon as
// it will then be as far as this transaction knows: past itself, below any
// older writer still in flight. Listeners hear it right after the
// transaction's other notifications, so its own rows can be delivered
// without waiting for a tick.
func (t *Tx) NotifyHorizon(ctx context.Context, channel, prefix string) error {
	// Its horizon is everything below it but other writers in flight,
	// itself included: it holds once the writer commits, which is when
	// listeners hear of it.
	if _, err := t.tx.Exec(ctx, commitMarkerSQL, writerLockKey, channel, prefix); err != nil {
		return fmt.Errorf("notify horizon: %w", err)
	}
	return nil
}

// Notify sends payloads on channel when the transaction commits, after the
// notifications of every transaction that committed before it.
func (t *Tx) Notify(ctx context.Context, channel string, payloads []string) error {
	if len(payloads) == 0 {
		return nil
	}
	if _, err := t.tx.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS u(p, n) ORDER BY n`, channel, payloads); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// SpillPayload stores a relay message too large for NOTIFY, visible when
// the transaction commits.
func (t *Tx) SpillPayload(ctx context.Context, payload []byte) (int64, error) {
	var id int64
	if err := t.tx.QueryRow(ctx, `INSERT INTO relay_payloads (payload) VALUES ($1) RETURNING id`, payload).Scan(&id); err != nil {
		return 0, fmt.Errorf("store relay payload: %w", err)
	}
	return id, nil
}

// RemoteRooms returns which of rooms have members on instances other than
// instance. With no other instance registered it returns at once, without
// looking at the rooms.
func (t *Tx) RemoteRooms(ctx context.Context, instance string, rooms []string) ([]string, error) {
	return remoteRooms(ctx, t.tx, instance, rooms)
}

func remoteRooms(ctx context.Context, q querier, instance string, rooms []string) ([]string, error) {
	rows, err := q.Query(ctx, `
		SELECT DISTINCT room FROM ws_rooms
		WHERE EXISTS (SELECT 1 FROM instances WHERE id <> $2) AND room = ANY($1) AND instance_id <> $2`, rooms, instance)
	if err != nil {
		return nil, fmt.Errorf("remote rooms: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
