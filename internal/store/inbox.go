package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

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
// latest operation wins. It takes the watermark at the recipient's stream
// head, under the lock of its state row (stream.go): every row at or below
// it is committed, and none can appear there later, so a notification that
// commits later is never marked read without having been seen.
//
// Counts live on the same row: ingest adds each new notification to them,
// and every state change adjusts them, both under the row's lock, so they
// are the counts of everything up to the head. Removing rows (retention)
// bumps inbox_epoch, which makes every cache stale until it is recounted.
//
// Every state change is a change of the recipient's stream: it takes the
// next position, is recorded in inbox_changes, and its updated frame is
// staged in the transaction (Stager), so it reaches every device.

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
	coalesce(n.source_topic, ''), coalesce(n.source_partition, 0), coalesce(n.source_offset, 0),
	coalesce(n.event_id, ''), n.expires_at, coalesce(n.group_key, ''), coalesce(n.group_count, 1), n.actors`
}

// selectRows reads rows of any recipients; selectRecipientRows those of
// the recipient $1 (its watermarks are read once).
var (
	selectRows          = `SELECT ` + rowColumns("n.recipient_id") + ` FROM notifications n LEFT JOIN notification_marks m ON m.id = n.id`
	selectRecipientRows = `SELECT ` + rowColumns("$1") + ` FROM notifications n LEFT JOIN notification_marks m ON m.id = n.id`
)

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

// stateRow is a recipient's inbox_states row.
type stateRow struct {
	readWM, seenWM, deletedWM int64
	head                      int64
	valid                     bool // the counts' epoch is current
	counts                    Counts
}

// lockState returns the recipient's state row, created if missing, locked
// until the transaction ends: changes of one recipient take turns, with
// ingest too (stream.go). A row created here holds no notification yet,
// so its counts (zero) are valid.
func lockState(ctx context.Context, tx pgx.Tx, recipient string) (stateRow, error) {
	var st stateRow
	err := tx.QueryRow(ctx, `
		INSERT INTO inbox_states AS s (recipient_id, counts_epoch) VALUES ($1, (SELECT epoch FROM inbox_epoch))
		ON CONFLICT (recipient_id) DO UPDATE SET updated_at = now()
		RETURNING read_wm, seen_wm, deleted_wm, head, counts_epoch = (SELECT epoch FROM inbox_epoch), total, unread, unseen`,
		recipient).Scan(&st.readWM, &st.seenWM, &st.deletedWM, &st.head, &st.valid, &st.counts.Total, &st.counts.Unread, &st.counts.Unseen)
	if err != nil {
		return st, fmt.Errorf("lock inbox state: %w", err)
	}
	return st, nil
}

// recountSQL counts the recipient's notifications that are neither
// archived nor deleted: $1 recipient. It reads the columns of the
// (recipient_id, seq) INCLUDE (is_read) index, and the marks by
// (recipient_id, seq): an index-only scan, no heap page per row.
var recountSQL = func() string {
	read, seen, archived, deleted := stateSQL("$1")
	return `
SELECT count(*) FILTER (WHERE live), count(*) FILTER (WHERE live AND NOT rd), count(*) FILTER (WHERE live AND NOT sn),
       (SELECT epoch FROM inbox_epoch)
FROM (SELECT NOT ` + archived + ` AND NOT ` + deleted + ` AS live, ` + read + ` AS rd, ` + seen + ` AS sn
      FROM notifications n
      LEFT JOIN notification_marks m ON m.recipient_id = n.recipient_id AND m.seq = n.seq
      WHERE n.recipient_id = $1 AND n.seq > ` + wm("deleted_wm", "$1") + `) r`
}()

// recount counts the recipient's notifications again and caches the
// result; the transaction holds the state row (lockState).
func recount(ctx context.Context, tx pgx.Tx, recipient string, st stateRow) (stateRow, error) {
	var c Counts
	var epoch int64 // read with the count: a removal that commits after it leaves the cache stale
	if err := tx.QueryRow(ctx, recountSQL, recipient).Scan(&c.Total, &c.Unread, &c.Unseen, &epoch); err != nil {
		return st, fmt.Errorf("count notifications: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE inbox_states SET counts_epoch = $5, total = $2, unread = $3, unseen = $4
		WHERE recipient_id = $1`, recipient, c.Total, c.Unread, c.Unseen, epoch); err != nil {
		return st, fmt.Errorf("cache counts: %w", err)
	}
	st.counts, st.valid = c, true
	return st, nil
}

// Counts returns the recipient's badge figures and the position of its
// stream they are at: the cached row, recounted (under its lock) when
// retention made it stale.
func (s *Store) Counts(ctx context.Context, recipient string) (Counts, int64, error) {
	var c Counts
	var pos int64
	var valid bool
	err := s.Pool.QueryRow(ctx, `SELECT total, unread, unseen, head, counts_epoch = (SELECT epoch FROM inbox_epoch)
		FROM inbox_states WHERE recipient_id = $1`, recipient).Scan(&c.Total, &c.Unread, &c.Unseen, &pos, &valid)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Counts{}, 0, nil
	case err != nil:
		return c, 0, fmt.Errorf("count notifications: %w", err)
	case valid:
		return c, pos, nil
	}
	err = s.InTx(ctx, func(tx *Tx) error {
		st, err := lockState(ctx, tx.tx, recipient)
		if err == nil && !st.valid {
			st, err = recount(ctx, tx.tx, recipient, st)
		}
		c, pos = st.counts, st.head
		return err
	})
	return c, pos, err
}

// StreamPos is where the recipient's stream stands now (0: no change yet).
// A listing read after it reflects at least every change up to it.
func (s *Store) StreamPos(ctx context.Context, recipient string) (int64, error) {
	var pos int64
	err := s.Pool.QueryRow(ctx, `SELECT head FROM inbox_states WHERE recipient_id = $1`, recipient).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read stream position: %w", err)
	}
	return pos, nil
}

// ErrTooMany refuses a change of more than event.MaxChangeIDs ids.
var ErrTooMany = fmt.Errorf("at most %d ids at once", event.MaxChangeIDs)

// Mark applies op to the recipient's notifications ids (at most
// event.MaxChangeIDs). Ids the recipient does not have, or has deleted,
// are left alone (Change.Found lists the others). A change that changes
// something is a change of the recipient's stream, staged with stage.
func (s *Store) Mark(ctx context.Context, recipient string, op Op, ids []uuid.UUID, stage Stager) (Change, error) {
	ch := Change{Op: op}
	if len(ids) > event.MaxChangeIDs {
		return ch, ErrTooMany
	}
	if len(ids) == 0 {
		return ch, nil
	}
	return s.change(ctx, recipient, stage, func(tx pgx.Tx, st stateRow) (Change, error) {
		ch := Change{Op: op}
		read, seen, archived, deleted := stateSQL("$1")
		rows, err := tx.Query(ctx, `SELECT n.id, n.seq, `+read+`, `+seen+`, `+archived+`, `+deleted+`
			FROM notifications n LEFT JOIN notification_marks m ON m.id = n.id
			WHERE n.recipient_id = $1 AND n.id = ANY($2) ORDER BY n.seq DESC`, recipient, ids)
		if err != nil {
			return ch, fmt.Errorf("mark %s: %w", op, err)
		}
		var changed []uuid.UUID
		var seqs []int64
		counts := st.counts
		for rows.Next() {
			var id uuid.UUID
			var seq int64
			var old event.States
			if err := rows.Scan(&id, &seq, &old.Read, &old.Seen, &old.Archived, &old.Deleted); err != nil {
				rows.Close()
				return ch, fmt.Errorf("mark %s: %w", op, err)
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
			counts = counts.Add(event.CountOf(now)).Sub(event.CountOf(old))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return ch, fmt.Errorf("mark %s: %w", op, err)
		}
		if len(changed) == 0 {
			return ch, nil
		}
		r, sn, a, d := op.Sets()
		if _, err := tx.Exec(ctx, upsertMarks+` FROM unnest($6::uuid[], $7::bigint[]) AS u(id, seq)`+onConflictMarks,
			recipient, r, sn, a, d, changed, seqs); err != nil {
			return ch, fmt.Errorf("mark %s: %w", op, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE inbox_states SET total = $2, unread = $3, unseen = $4 WHERE recipient_id = $1`,
			recipient, counts.Total, counts.Unread, counts.Unseen); err != nil {
			return ch, fmt.Errorf("mark %s: %w", op, err)
		}
		ch.IDs, ch.Updated, ch.Counts = changed, int64(len(changed)), counts
		return ch, nil
	})
}

// change runs one state change of recipient's inbox in a transaction that
// holds its state row (with valid counts), and records what it changed as
// the next change of the recipient's stream, staged with stage.
func (s *Store) change(ctx context.Context, recipient string, stage Stager, apply func(pgx.Tx, stateRow) (Change, error)) (Change, error) {
	var ch Change
	var settle func(bool)
	err := s.InTx(ctx, func(tx *Tx) error {
		settle = nil
		st, err := lockState(ctx, tx.tx, recipient)
		if err == nil && !st.valid {
			st, err = recount(ctx, tx.tx, recipient, st)
		}
		if err != nil {
			return err
		}
		if ch, err = apply(tx.tx, st); err != nil || ch.Updated == 0 {
			return err
		}
		push, err := tx.appendChange(ctx, recipient, st.head, event.TopicNotificationUpdated, &ch.Counts, ch.Frame())
		if err != nil {
			return err
		}
		ch.Pos = push.Pos
		settle, err = stageChanges(ctx, stage, tx, []event.Push{push})
		return err
	})
	if settle != nil {
		settle(err == nil)
	}
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

// allOp is what an "all" operation (read-all, seen all, delete-all) does:
// every notification at or below the watermark it moves (advance) has the
// state, the marks it supersedes go (clear: at or below $2), and the
// counts follow (counts: from those of the inbox and of the archive, the
// counts after and how many notifications changed).
type allOp struct {
	advance string // $1 recipient, $2 watermark, $3–$5 the counts after
	filter  InboxFilter
	clear   string // $1 recipient, $2 watermark
	counts  func(inbox, archive Counts) (after Counts, updated int64)
}

var allOps = map[Op]allOp{
	event.OpRead: {
		advance: `UPDATE inbox_states SET read_wm = $2, seen_wm = greatest(seen_wm, $2), total = $3, unread = $4, unseen = $5
			WHERE recipient_id = $1`,
		filter: InboxFilter{Unread: true, Archived: ArchivedAny},
		clear: `UPDATE notification_marks SET is_read = NULL, is_seen = NULL, updated_at = now()
			WHERE recipient_id = $1 AND seq <= $2 AND (is_read IS NOT NULL OR is_seen IS NOT NULL)`,
		counts: func(in, ar Counts) (Counts, int64) { return Counts{Total: in.Total}, in.Unread + ar.Unread },
	},
	event.OpSeen: {
		advance: `UPDATE inbox_states SET seen_wm = $2, total = $3, unread = $4, unseen = $5
			WHERE recipient_id = $1`,
		filter: InboxFilter{Unseen: true, Archived: ArchivedAny},
		clear: `UPDATE notification_marks SET is_seen = NULL, updated_at = now()
			WHERE recipient_id = $1 AND seq <= $2 AND is_seen IS NOT NULL`,
		counts: func(in, ar Counts) (Counts, int64) {
			return Counts{Total: in.Total, Unread: in.Unread}, in.Unseen + ar.Unseen
		},
	},
	event.OpDelete: {
		advance: `UPDATE inbox_states SET deleted_wm = $2, total = $3, unread = $4, unseen = $5
			WHERE recipient_id = $1`,
		filter: InboxFilter{Archived: ArchivedAny},
		clear:  `DELETE FROM notification_marks WHERE recipient_id = $1 AND seq <= $2`,
		counts: func(in, ar Counts) (Counts, int64) { return Counts{}, in.Total + ar.Total },
	},
}

// archiveCountsSQL counts the archived (not deleted) notifications of $1
// by state, through their marks (only marks make one archived).
var archiveCountsSQL = func() string {
	read, seen, _, deleted := stateSQL("$1")
	return byMarks(`SELECT count(*), count(*) FILTER (WHERE NOT `+read+`), count(*) FILTER (WHERE NOT `+seen+`)
		FROM notifications n`, `is_archived`) + ` AND NOT ` + deleted
}()

// MarkAll applies op (read, seen or delete) to every notification of the
// recipient: its watermark moves to the stream's head, the marks it
// supersedes are cleared, and the change is the next one of the stream.
func (s *Store) MarkAll(ctx context.Context, recipient string, op Op, stage Stager) (Change, error) {
	a, ok := allOps[op]
	if !ok {
		return Change{Op: op, All: true}, fmt.Errorf("%s cannot apply to all notifications", op)
	}
	return s.change(ctx, recipient, stage, func(tx pgx.Tx, st stateRow) (Change, error) {
		ch := Change{Op: op, All: true}
		var archive Counts
		if err := tx.QueryRow(ctx, archiveCountsSQL, recipient).Scan(&archive.Total, &archive.Unread, &archive.Unseen); err != nil {
			return ch, fmt.Errorf("mark all %s: %w", op, err)
		}
		var after Counts
		after, ch.Updated = a.counts(st.counts, archive)
		if ch.Updated == 0 {
			return ch, nil
		}
		// The frame lists the newest of them, for clients that do not
		// apply "all" by position.
		rows, err := listNotifications(ctx, tx, recipient, a.filter, event.MaxChangeIDs, 0, true)
		if err != nil {
			return ch, err
		}
		for _, r := range rows {
			ch.IDs = append(ch.IDs, r.ID)
		}
		w := st.head // every notification at or below is committed; none can come there later
		_, err = tx.Exec(ctx, a.clear, recipient, w)
		if err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM notification_marks
				WHERE recipient_id = $1 AND seq <= $2 AND num_nonnulls(is_read, is_seen, is_archived, is_deleted) = 0`, recipient, w)
		}
		if err != nil {
			return ch, fmt.Errorf("mark all %s: %w", op, err)
		}
		if _, err := tx.Exec(ctx, a.advance, recipient, w, after.Total, after.Unread, after.Unseen); err != nil {
			return ch, fmt.Errorf("mark all %s: %w", op, err)
		}
		ch.Counts = after
		return ch, nil
	})
}
