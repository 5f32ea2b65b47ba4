package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
)

// The states of a notification are kept off its wide row (migration 0007):
// updating 100,000 wide rows for a read-all cost seconds and a gigabyte of
// WAL. Instead:
//
//   - notification_marks holds explicit per-row marks (NULL: not set);
//   - inbox_states holds, per recipient, the watermarks of the "all"
//     operations: every notification with seq <= read_wm is read, <=
//     seen_wm seen, <= deleted_wm deleted, unless a mark says otherwise.
//
// Effective state of a row n with mark m and watermarks s:
//
//	read     = coalesce(m.is_read, n.is_read OR n.seq <= s.read_wm)
//	seen     = read OR m.is_seen OR n.seq <= s.seen_wm
//	archived = m.is_archived
//	deleted  = m.is_deleted OR n.seq <= s.deleted_wm
//
// n.is_read is the column written before; it is read, never written again.
// Reading marks a notification seen (a read one is always seen), and so
// does marking it unread (one marks unread what one has seen). An "all"
// operation moves a watermark and clears the marks it supersedes, so the
// latest operation wins. It takes the watermark at the horizon (order.go):
// every row below it is committed, and rows already visible above it get
// explicit marks, so a notification that commits later is never marked
// read without having been seen.
//
// Counts are answered from a per-recipient cache of the counts of the
// notifications up to counts_seq (always below a horizon, so no row can
// still appear under it) plus a count of the few rows after it. Every
// state change adjusts the cache in its own transaction; ingest never
// touches it. Removing rows (retention, dedupe) makes caches stale.

// ErrNotFound is returned when a named row does not exist (for this recipient).
var ErrNotFound = event.ErrNotFound

// Aliases of the domain's inbox types, for the store's callers.
type (
	Op          = event.Op
	Counts      = event.Counts
	InboxFilter = event.InboxFilter
	Change      = event.Change
)

// Listing modes and state changes (see event).
const (
	ArchivedExclude = event.ArchivedExclude
	ArchivedOnly    = event.ArchivedOnly
	ArchivedAny     = event.ArchivedAny
)

// wm is the SQL of recipient rid's watermark col (0 without a state row).
func wm(col, rid string) string {
	return `coalesce((SELECT ` + col + ` FROM inbox_states WHERE recipient_id = ` + rid + `), 0)`
}

// stateSQL returns the SQL of the effective states of row n with mark m
// (LEFT JOIN notification_marks m ON m.id = n.id), for the recipient whose
// id is the SQL rid.
func stateSQL(rid string) (read, seen, archived, deleted string) {
	read = `coalesce(m.is_read, n.is_read OR n.seq <= ` + wm("read_wm", rid) + `)`
	seen = `(` + read + ` OR m.is_seen IS TRUE OR n.seq <= ` + wm("seen_wm", rid) + `)`
	archived = `coalesce(m.is_archived, false)`
	deleted = `(m.is_deleted IS TRUE OR n.seq <= ` + wm("deleted_wm", rid) + `)`
	return
}

// rowColumns are the columns queryRows scans, states for the recipient
// whose id is the SQL rid.
func rowColumns(rid string) string {
	read, seen, archived, deleted := stateSQL(rid)
	return `n.id, n.seq, n.recipient_id, n.type, coalesce(n.organizer_id, ''), coalesce(n.merchant_id, ''),
	n.actor_id, n.actor, n.content, coalesce(n.action_url, ''), n.data, n.occurred_at, n.event_key,
	` + read + `, ` + seen + `, ` + archived + `, ` + deleted + `, n.created_at,
	coalesce(n.source_topic, ''), coalesce(n.source_partition, 0), coalesce(n.source_offset, 0)`
}

// selectRows reads rows of any recipients; selectRecipientRows those of
// the recipient $1 (its watermarks are read once).
var (
	selectRows          = `SELECT ` + rowColumns("n.recipient_id") + ` FROM notifications n LEFT JOIN notification_marks m ON m.id = n.id`
	selectRecipientRows = `SELECT ` + rowColumns("$1") + ` FROM notifications n LEFT JOIN notification_marks m ON m.id = n.id`
)

// ReplayAfter returns the recipient's notifications after the one with id
// since (whose seq it also returns) and below the seq bound below, oldest
// first, deleted ones left out: the caller delivers those from below on
// live, in order (see order.go). When more than limit exist it returns the
// newest limit of them and truncated=true: the seam with live pushes stays
// gap-free, and the client learns older ones were left out.
func (s *Store) ReplayAfter(ctx context.Context, recipient string, since uuid.UUID, limit int, below int64) (rows []*event.Row, truncated bool, sinceSeq int64, err error) {
	err = s.Pool.QueryRow(ctx, `SELECT seq FROM notifications WHERE id = $1 AND recipient_id = $2`, since, recipient).Scan(&sinceSeq)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, 0, ErrNotFound
	}
	if err != nil {
		return nil, false, 0, fmt.Errorf("replay: %w", err)
	}
	_, _, _, deleted := stateSQL("$1")
	rows, err = queryRows(ctx, s.Pool, `SELECT * FROM (`+selectRecipientRows+`
		WHERE n.recipient_id = $1 AND n.seq > $2 AND n.seq < $4 AND NOT `+deleted+`
		ORDER BY n.seq DESC LIMIT $3) r ORDER BY 2`,
		recipient, sinceSeq, limit+1, below)
	if err != nil {
		return nil, false, 0, fmt.Errorf("replay: %w", err)
	}
	if len(rows) > limit {
		return rows[1:], true, sinceSeq, nil
	}
	return rows, false, sinceSeq, nil
}

// Notification returns one of the recipient's notifications with its
// states, deleted or not; ErrNotFound when the recipient has none with id.
func (s *Store) Notification(ctx context.Context, recipient string, id uuid.UUID) (*event.Row, error) {
	rows, err := queryRows(ctx, s.Pool, selectRecipientRows+` WHERE n.recipient_id = $1 AND n.id = $2`, recipient, id)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	return rows[0], nil
}

// batcher runs queries and batches: the pool or a transaction.
type batcher interface {
	querier
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// ListNotifications returns a page of the recipient's notifications that
// pass f, newest first, with a seq below before (0: from the newest).
//
// Each filter walks an index: the recipient's rows by seq from the
// watermark that bounds it (unread ones after a read-all are the rows
// above read_wm, not a scan of the read ones), and the marks for what
// marks alone decide (archived; unread below read_wm). type and
// organizerId filter the rows so walked.
func (s *Store) ListNotifications(ctx context.Context, recipient string, f InboxFilter, limit int, before int64) ([]*event.Row, error) {
	return listNotifications(ctx, s.Pool, recipient, f, limit, before, false)
}

// selectRecipientIDs reads only ids and seqs (listNotifications idsOnly).
const selectRecipientIDs = `SELECT n.id, n.seq FROM notifications n LEFT JOIN notification_marks m ON m.id = n.id`

// byMarks reads the rows of the recipient's marks that match cond, through
// the primary key (each lookup touches one partition): sel with its FROM
// starting at the marks. The marks are few; a plan that walked the
// recipient's rows instead (all of them) must not be possible, so the rows
// are reached by id only.
func byMarks(sel, cond string) string {
	cols, _, _ := strings.Cut(strings.TrimPrefix(sel, "SELECT "), "FROM notifications n")
	return `WITH k AS MATERIALIZED (SELECT id FROM notification_marks WHERE recipient_id = $1 AND ` + cond + `)
		SELECT ` + cols + ` FROM k JOIN notifications n ON n.id = k.id LEFT JOIN notification_marks m ON m.id = n.id
		WHERE true`
}

// listNotifications is ListNotifications in q; idsOnly reads rows with
// only ID and Seq set.
func listNotifications(ctx context.Context, q batcher, recipient string, f InboxFilter, limit int, before int64, idsOnly bool) ([]*event.Row, error) {
	sel, scan := selectRecipientRows, scanRows
	if idsOnly {
		sel, scan = selectRecipientIDs, scanIDs
	}
	if before <= 0 {
		before = math.MaxInt64
	}
	b := &pgx.Batch{}
	var parts [][]*event.Row
	for _, sql := range listSQL(sel, f) {
		b.Queue(sql, recipient, before, limit, f.Type, f.OrganizerID).Query(func(r pgx.Rows) error {
			rows, err := scan(r)
			parts = append(parts, rows)
			return err
		})
	}
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	return mergeNewestFirst(parts, limit), nil
}

// listSQL returns the queries of a listing, each sorted by seq, descending:
// $1 recipient, $2 seq bound (exclusive), $3 limit, $4 type, $5 organizer.
func listSQL(sel string, f InboxFilter) []string {
	read, seen, archived, deleted := stateSQL("$1")
	conds := ` AND NOT ` + deleted + ` AND ($4 = '' OR n.type = $4) AND ($5 = '' OR n.organizer_id = $5)`
	switch f.Archived {
	case ArchivedExclude:
		conds += ` AND NOT ` + archived
	case ArchivedOnly:
		conds += ` AND ` + archived
	}
	if f.Unread {
		conds += ` AND NOT ` + read
	}
	if f.Unseen {
		conds += ` AND NOT ` + seen
	}
	tail := ` ORDER BY n.seq DESC LIMIT $3`
	if f.Archived == ArchivedOnly {
		// Only marks make a notification archived: walk them.
		return []string{byMarks(sel, `is_archived AND seq < $2`) + conds + tail}
	}
	// The walk over the recipient's rows, from the highest watermark the
	// filters allow.
	from := wm("deleted_wm", "$1")
	switch {
	case f.Unseen: // unseen implies unread; seen_wm >= read_wm
		from = `greatest(` + from + `, ` + wm("seen_wm", "$1") + `)`
	case f.Unread:
		from = `greatest(` + from + `, ` + wm("read_wm", "$1") + `)`
	}
	out := []string{sel + ` WHERE n.recipient_id = $1 AND n.seq < $2 AND n.seq > ` + from + conds + tail}
	if f.Unread && !f.Unseen {
		// Marked unread below read_wm: only marks tell.
		out = append(out, byMarks(sel, `is_read = false AND seq < $2 AND seq <= `+wm("read_wm", "$1"))+conds+tail)
	}
	return out
}

// scanIDs reads (id, seq) rows.
func scanIDs(rows pgx.Rows) ([]*event.Row, error) {
	defer rows.Close()
	var out []*event.Row
	for rows.Next() {
		r := &event.Row{}
		if err := rows.Scan(&r.ID, &r.Seq); err != nil {
			return nil, fmt.Errorf("read notification: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// mergeNewestFirst merges lists sorted by seq, descending, into the first
// limit rows.
func mergeNewestFirst(parts [][]*event.Row, limit int) []*event.Row {
	if len(parts) == 1 {
		return parts[0]
	}
	var out []*event.Row
	idx := make([]int, len(parts))
	for len(out) < limit {
		best := -1
		for i, p := range parts {
			if idx[i] < len(p) && (best < 0 || p[idx[i]].Seq > parts[best][idx[best]].Seq) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		out = append(out, parts[best][idx[best]])
		idx[best]++
	}
	return out
}

// countsSQL counts the recipient's rows after its cache: $1 recipient, $2
// a seq bound below which every row is committed (a horizon). The tail
// starts at counts_seq when the cache is valid (its epoch is current), else
// at deleted_wm with nothing cached; it is counted in two parts, up to $2
// (what a fold may cache) and after. It also returns the state row's
// version (xmin) and the epoch, for a fold. It reads only the columns of
// the (recipient_id, seq) INCLUDE (is_read) index, and the marks by
// (recipient_id, seq): an index-only scan, with no heap page per row.
var countsSQL = func() string {
	read, seen, archived, deleted := stateSQL("$1")
	return `
WITH st AS MATERIALIZED (
	SELECT (SELECT epoch FROM inbox_epoch) AS epoch,
	       (SELECT xmin::text FROM inbox_states WHERE recipient_id = $1) AS version,
	       coalesce(bool_or(counts_epoch = (SELECT epoch FROM inbox_epoch)), false) AS valid,
	       coalesce(max(counts_seq), 0) AS cs, coalesce(max(deleted_wm), 0) AS dw,
	       coalesce(max(total), 0) AS t, coalesce(max(unread), 0) AS u, coalesce(max(unseen), 0) AS us
	FROM inbox_states WHERE recipient_id = $1
)
SELECT st.epoch, st.version, st.valid, st.t, st.u, st.us, x.*
FROM st, LATERAL (
	SELECT count(*) FILTER (WHERE below) AS scanned,
	       count(*) FILTER (WHERE below AND live) AS bt,
	       count(*) FILTER (WHERE below AND live AND NOT rd) AS bu,
	       count(*) FILTER (WHERE below AND live AND NOT sn) AS bus,
	       count(*) FILTER (WHERE NOT below AND live) AS at,
	       count(*) FILTER (WHERE NOT below AND live AND NOT rd) AS au,
	       count(*) FILTER (WHERE NOT below AND live AND NOT sn) AS aus
	FROM (SELECT n.seq <= $2 AS below, NOT ` + archived + ` AND NOT ` + deleted + ` AS live, ` + read + ` AS rd, ` + seen + ` AS sn
	      FROM notifications n
	      LEFT JOIN notification_marks m ON m.recipient_id = n.recipient_id AND m.seq = n.seq
	      WHERE n.recipient_id = $1
	        AND n.seq > CASE WHEN st.valid THEN greatest(st.cs, st.dw) ELSE st.dw END) r
) x`
}()

// foldAfter is how many rows past the cache make a count fold them in.
const foldAfter = 256

// tally is what countsSQL returns.
type tally struct {
	epoch        int64
	version      *string // the state row's xmin; nil: no state row
	valid        bool
	cached       Counts
	below, above Counts
	scanned      int64 // rows past the cache, up to the bound
}

func (t tally) counts() Counts {
	c := t.below.Add(t.above)
	if t.valid {
		c = c.Add(t.cached)
	}
	return c
}

func readTally(ctx context.Context, q querier, recipient string, bound int64) (t tally, err error) {
	err = q.QueryRow(ctx, countsSQL, recipient, bound).Scan(&t.epoch, &t.version, &t.valid,
		&t.cached.Total, &t.cached.Unread, &t.cached.Unseen, &t.scanned,
		&t.below.Total, &t.below.Unread, &t.below.Unseen, &t.above.Total, &t.above.Unread, &t.above.Unseen)
	if err != nil {
		return t, fmt.Errorf("count notifications: %w", err)
	}
	return t, nil
}

// Counts returns the recipient's badge figures: the cache plus the rows
// after it. When many rows were added since the cache was made, those below
// the horizon are folded into it for the next call — unless a state change
// came meanwhile (the state row's version moved), which the next call
// handles.
func (s *Store) Counts(ctx context.Context, recipient string) (Counts, error) {
	h, err := s.recentHorizon(ctx)
	if err != nil {
		return Counts{}, err
	}
	bound := SeqOf(h, 0) - 1
	t, err := readTally(ctx, s.Pool, recipient, bound)
	if err != nil || t.scanned <= foldAfter {
		return t.counts(), err
	}
	cache := t.below
	if t.valid {
		cache = cache.Add(t.cached)
	}
	if t.version == nil {
		_, err = s.Pool.Exec(ctx, `INSERT INTO inbox_states (recipient_id, counts_epoch, counts_seq, total, unread, unseen)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (recipient_id) DO NOTHING`,
			recipient, t.epoch, bound, cache.Total, cache.Unread, cache.Unseen)
	} else {
		_, err = s.Pool.Exec(ctx, `UPDATE inbox_states SET counts_epoch = $2, counts_seq = greatest($3, deleted_wm),
			total = $4, unread = $5, unseen = $6 WHERE recipient_id = $1 AND xmin::text = $7`,
			recipient, t.epoch, bound, cache.Total, cache.Unread, cache.Unseen, *t.version)
	}
	if err != nil {
		return t.counts(), fmt.Errorf("fold counts: %w", err)
	}
	return t.counts(), nil
}

// recentHorizon is a horizon at most a second old: an older one is still a
// valid bound (every row below it is committed), only less far.
func (s *Store) recentHorizon(ctx context.Context) (int64, error) {
	if h := s.horizonCache.Load(); h != nil && time.Since(h.at) < time.Second {
		return h.h, nil
	}
	h, err := s.Horizon(ctx)
	if err != nil {
		return 0, err
	}
	s.horizonCache.Store(&cachedHorizon{h: h, at: time.Now()})
	return h, nil
}

type cachedHorizon struct {
	h  int64
	at time.Time
}

// stateRow is a recipient's inbox_states row.
type stateRow struct {
	readWM, seenWM, deletedWM int64
	valid                     bool // the cache's epoch is current
	countsSeq                 int64
	total, unread, unseen     int64
}

// lockState returns the recipient's state row, created if missing, locked
// until the transaction ends: state changes of one recipient take turns.
func lockState(ctx context.Context, tx pgx.Tx, recipient string) (stateRow, error) {
	var st stateRow
	err := tx.QueryRow(ctx, `
		INSERT INTO inbox_states AS s (recipient_id) VALUES ($1)
		ON CONFLICT (recipient_id) DO UPDATE SET updated_at = now()
		RETURNING read_wm, seen_wm, deleted_wm, counts_epoch = (SELECT epoch FROM inbox_epoch), counts_seq, total, unread, unseen`,
		recipient).Scan(&st.readWM, &st.seenWM, &st.deletedWM, &st.valid, &st.countsSeq, &st.total, &st.unread, &st.unseen)
	if err != nil {
		return st, fmt.Errorf("lock inbox state: %w", err)
	}
	return st, nil
}

// ErrTooMany refuses a change of more than event.MaxChangeIDs ids.
var ErrTooMany = fmt.Errorf("at most %d ids at once", event.MaxChangeIDs)

// Mark applies op to the recipient's notifications ids (at most
// event.MaxChangeIDs). Ids the recipient does not have, or has deleted,
// are left alone (Change.Found lists the others).
func (s *Store) Mark(ctx context.Context, recipient string, op Op, ids []uuid.UUID) (Change, error) {
	ch := Change{Op: op}
	if len(ids) > event.MaxChangeIDs {
		return ch, ErrTooMany
	}
	if len(ids) == 0 {
		return ch, nil
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		ch = Change{Op: op}
		st, err := lockState(ctx, tx.tx, recipient)
		if err != nil {
			return err
		}
		read, seen, archived, deleted := stateSQL("$1")
		rows, err := tx.tx.Query(ctx, `SELECT n.id, n.seq, `+read+`, `+seen+`, `+archived+`, `+deleted+`
			FROM notifications n LEFT JOIN notification_marks m ON m.id = n.id
			WHERE n.recipient_id = $1 AND n.id = ANY($2) ORDER BY n.seq DESC`, recipient, ids)
		if err != nil {
			return fmt.Errorf("mark %s: %w", op, err)
		}
		var changed []uuid.UUID
		var seqs []int64
		var delta Counts
		for rows.Next() {
			var id uuid.UUID
			var seq int64
			var old event.States
			if err := rows.Scan(&id, &seq, &old.Read, &old.Seen, &old.Archived, &old.Deleted); err != nil {
				rows.Close()
				return fmt.Errorf("mark %s: %w", op, err)
			}
			if old.Deleted {
				continue
			}
			ch.Found = append(ch.Found, id)
			now := op.Apply(old)
			if now == old {
				continue
			}
			changed, seqs = append(changed, id), append(seqs, seq)
			if st.valid && seq <= st.countsSeq {
				delta = delta.Add(event.CountOf(now)).Sub(event.CountOf(old))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("mark %s: %w", op, err)
		}
		if len(changed) == 0 {
			return nil
		}
		r, sn, a, d := op.Sets()
		if _, err := tx.tx.Exec(ctx, upsertMarks+` FROM unnest($6::uuid[], $7::bigint[]) AS u(id, seq)`+onConflictMarks,
			recipient, r, sn, a, d, changed, seqs); err != nil {
			return fmt.Errorf("mark %s: %w", op, err)
		}
		if delta != (Counts{}) {
			if _, err := tx.tx.Exec(ctx, `UPDATE inbox_states SET total = total + $2, unread = unread + $3, unseen = unseen + $4
				WHERE recipient_id = $1`, recipient, delta.Total, delta.Unread, delta.Unseen); err != nil {
				return fmt.Errorf("mark %s: %w", op, err)
			}
		}
		ch.IDs, ch.Updated = changed, int64(len(changed))
		return nil
	})
	return ch, err
}

// upsertMarks and onConflictMarks write marks for rows (id, seq) given by
// the FROM clause between them: $1 recipient, $2–$5 the values (NULL:
// untouched), $6 on for the FROM clause.
const (
	upsertMarks = `INSERT INTO notification_marks AS m (id, recipient_id, seq, is_read, is_seen, is_archived, is_deleted)
		SELECT id, $1, seq, $2::boolean, $3::boolean, $4::boolean, $5::boolean`
	onConflictMarks = `
		ON CONFLICT (id) DO UPDATE SET
			is_read = coalesce(EXCLUDED.is_read, m.is_read), is_seen = coalesce(EXCLUDED.is_seen, m.is_seen),
			is_archived = coalesce(EXCLUDED.is_archived, m.is_archived), is_deleted = coalesce(EXCLUDED.is_deleted, m.is_deleted),
			updated_at = now()`
)

// MarkAll applies op (read, seen or delete) to every notification of the
// recipient: its watermark moves to the horizon, the marks it supersedes
// are cleared, and the rows already visible above the horizon get marks.
func (s *Store) MarkAll(ctx context.Context, recipient string, op Op) (Change, error) {
	ch := Change{Op: op, All: true}
	var col string
	var f InboxFilter
	switch op {
	case event.OpRead:
		col, f = "read_wm", InboxFilter{Unread: true, Archived: ArchivedAny}
	case event.OpSeen:
		col, f = "seen_wm", InboxFilter{Unseen: true, Archived: ArchivedAny}
	case event.OpDelete:
		col, f = "deleted_wm", InboxFilter{Archived: ArchivedAny}
	default:
		return ch, fmt.Errorf("%s cannot apply to all notifications", op)
	}
	h, err := s.Horizon(ctx)
	if err != nil {
		return ch, err
	}
	err = s.InTx(ctx, func(tx *Tx) error {
		ch = Change{Op: op, All: true}
		st, err := lockState(ctx, tx.tx, recipient)
		if err != nil {
			return err
		}
		w := SeqOf(h, 0) - 1 // every row at or below is committed
		switch op {
		case event.OpRead:
			w = max(w, st.readWM)
		case event.OpSeen:
			w = max(w, st.seenWM)
		case event.OpDelete:
			w = max(w, st.deletedWM)
		}

		// What changes: listed (the newest, for the frame) and counted —
		// from the list when it is complete, else from the cache (and the
		// few archived ones, which it leaves out).
		read, seen, _, deleted := stateSQL("$1")
		rows, err := listNotifications(ctx, tx.tx, recipient, f, event.MaxChangeIDs+1, 0, true)
		if err != nil {
			return err
		}
		ch.Updated = int64(len(rows))
		// Without a valid cache, or to count more than the list holds, the
		// notifications up to w are counted — and cached, under the lock.
		var recount *tally
		if !st.valid || len(rows) > event.MaxChangeIDs {
			t, err := readTally(ctx, tx.tx, recipient, w)
			if err != nil {
				return err
			}
			recount = &t
		}
		if len(rows) > event.MaxChangeIDs {
			rows = rows[:event.MaxChangeIDs]
			var arch Counts
			if err := tx.tx.QueryRow(ctx, byMarks(`SELECT count(*), count(*) FILTER (WHERE NOT `+read+`), count(*) FILTER (WHERE NOT `+seen+`)
				FROM notifications n`, `is_archived`)+` AND NOT `+deleted, recipient).
				Scan(&arch.Total, &arch.Unread, &arch.Unseen); err != nil {
				return fmt.Errorf("mark all %s: %w", op, err)
			}
			c := recount.counts().Add(arch)
			ch.Updated = map[event.Op]int64{event.OpRead: c.Unread, event.OpSeen: c.Unseen, event.OpDelete: c.Total}[op]
		}
		if ch.Updated == 0 {
			return nil
		}
		for _, r := range rows {
			ch.IDs = append(ch.IDs, r.ID)
		}

		// Rows visible above the watermark get explicit marks (before the
		// watermark moves: their state is judged as it is now).
		affected := map[event.Op]string{event.OpRead: `NOT ` + read, event.OpSeen: `NOT ` + seen, event.OpDelete: `true`}[op]
		r, sn, a, d := op.Sets()
		if _, err := tx.tx.Exec(ctx, upsertMarks+` FROM (
				SELECT n.id, n.seq FROM notifications n LEFT JOIN notification_marks m ON m.id = n.id
				WHERE n.recipient_id = $1 AND n.seq > $6 AND NOT `+deleted+` AND `+affected+`) x`+onConflictMarks,
			recipient, r, sn, a, d, w); err != nil {
			return fmt.Errorf("mark all %s: %w", op, err)
		}
		// Marks the watermark supersedes go: the latest operation wins.
		switch op {
		case event.OpRead:
			_, err = tx.tx.Exec(ctx, `UPDATE notification_marks SET is_read = NULL, is_seen = NULL, updated_at = now()
				WHERE recipient_id = $1 AND seq <= $2 AND (is_read IS NOT NULL OR is_seen IS NOT NULL)`, recipient, w)
		case event.OpSeen:
			_, err = tx.tx.Exec(ctx, `UPDATE notification_marks SET is_seen = NULL, updated_at = now()
				WHERE recipient_id = $1 AND seq <= $2 AND is_seen IS NOT NULL`, recipient, w)
		case event.OpDelete:
			_, err = tx.tx.Exec(ctx, `DELETE FROM notification_marks WHERE recipient_id = $1 AND seq <= $2`, recipient, w)
		}
		if err == nil {
			_, err = tx.tx.Exec(ctx, `DELETE FROM notification_marks
				WHERE recipient_id = $1 AND seq <= $2 AND num_nonnulls(is_read, is_seen, is_archived, is_deleted) = 0`, recipient, w)
		}
		if err != nil {
			return fmt.Errorf("mark all %s: %w", op, err)
		}

		// The watermark, and the cache: every row at or below w now has
		// the state, so the cache's figures for it are zero — the cache
		// stops at or below w (it stops below a horizon older than this
		// one; a fresh one was counted up to w).
		set := col + ` = $2`
		if op == event.OpRead {
			set += `, seen_wm = greatest(seen_wm, $2)`
		}
		zero := func(c Counts) Counts {
			switch op {
			case event.OpRead:
				c.Unread, c.Unseen = 0, 0
			case event.OpSeen:
				c.Unseen = 0
			case event.OpDelete:
				c = Counts{}
			}
			return c
		}
		switch {
		case op == event.OpDelete:
			// Nothing at or below w counts any more: the cache can start there.
			set += `, counts_seq = $2, total = 0, unread = 0, unseen = 0, counts_epoch = (SELECT epoch FROM inbox_epoch)`
		case recount != nil:
			cache := recount.below
			if recount.valid {
				cache = cache.Add(recount.cached)
			}
			cache = zero(cache)
			set += fmt.Sprintf(`, counts_epoch = %d, counts_seq = greatest($2, deleted_wm), total = %d, unread = %d, unseen = %d`,
				recount.epoch, cache.Total, cache.Unread, cache.Unseen)
		case w < st.countsSeq:
			set += `, counts_epoch = -1`
		default:
			c := zero(Counts{Total: st.total, Unread: st.unread, Unseen: st.unseen})
			set += fmt.Sprintf(`, total = %d, unread = %d, unseen = %d`, c.Total, c.Unread, c.Unseen)
		}
		if _, err := tx.tx.Exec(ctx, `UPDATE inbox_states SET `+set+` WHERE recipient_id = $1`, recipient, w); err != nil {
			return fmt.Errorf("mark all %s: %w", op, err)
		}
		return nil
	})
	return ch, err
}
