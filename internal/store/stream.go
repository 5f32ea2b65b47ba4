package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
)

// The store's side of the sync stream (internal/stream owns the protocol
// and its invariant; docs/design.md, "The sync stream").
//
// Every change of a recipient's inbox takes the next position of the
// recipient's stream, inbox_states.head, in the transaction that makes the
// change: a notification row is its created change (its seq is the
// position), a state change is a row of inbox_changes. The writer updates
// the recipient's inbox_states row first and holds it until it commits, so:
//
//   - positions of one recipient commit in order and without a hole: a
//     reader that sees head H (committed) sees every change up to H, and
//     no change at or below H can still appear;
//   - a reader that locks the row (FOR SHARE, Heads) waits for a writer in
//     flight, so the head it reads covers every change whose writer
//     locked the row before it. A writer looks up which instances hold the
//     recipient's room (RemoteRooms) only after it locked the row: a client
//     registered before the reader's lock is therefore either covered by
//     the head it got or sent the change by its writer (internal/stream).
//
// Ingest locks the rows of a chunk's recipients in one statement, sorted by
// recipient id (the order of the primary key, which Heads' lock also
// follows), so two writers never wait for each other in a cycle. The rows of
// the recipients' counts ride along: ingest adds to them, a state change
// adjusts them, so GET /notifications/counts reads one row.
//
// Rows stored before migration 0009 keep their seq (a transaction id and a
// rank): inbox_states.floor is the recipient's head at the migration, and
// positions are dense above it only.

// MaxRowsPerTx is the most notifications one transaction may insert.
const MaxRowsPerTx = 1 << 20

// Head is where a recipient's stream stands.
type Head = event.StreamHead

// advanceHeads gives rows (a write transaction's next chunk, in order)
// their positions: each recipient's head moves by its number of rows, and
// its counts with it. A row's Counts are the recipient's counts right after
// it, when the cache is valid. It returns the transaction's time.
func (t *Tx) advanceHeads(ctx context.Context, rows []*event.Row) (time.Time, error) {
	n := map[string]int64{}
	for _, r := range rows {
		n[r.RecipientID]++
	}
	rcpts := make([]string, 0, len(n))
	for r := range n {
		rcpts = append(rcpts, r)
	}
	slices.Sort(rcpts) // the statement sorts them too; this keeps the arrays aligned
	counts := make([]int64, len(rcpts))
	for i, r := range rcpts {
		counts[i] = n[r]
	}
	res, err := t.tx.Query(ctx, `
		INSERT INTO inbox_states AS s (recipient_id, head, total, unread, unseen, counts_epoch)
		SELECT r, n, n, n, n, (SELECT epoch FROM inbox_epoch)
		FROM unnest($1::text[], $2::bigint[]) AS u(r, n) ORDER BY r
		ON CONFLICT (recipient_id) DO UPDATE SET head = s.head + EXCLUDED.head,
			total = s.total + EXCLUDED.head, unread = s.unread + EXCLUDED.head, unseen = s.unseen + EXCLUDED.head
		RETURNING recipient_id, head, total, unread, unseen, counts_epoch = (SELECT epoch FROM inbox_epoch), now()`,
		rcpts, counts)
	if err != nil {
		return time.Time{}, fmt.Errorf("advance stream heads: %w", err)
	}
	var now time.Time
	type after struct {
		head  int64
		c     event.Counts
		valid bool
	}
	heads := make(map[string]*after, len(rcpts))
	for res.Next() {
		var r string
		a := &after{}
		if err := res.Scan(&r, &a.head, &a.c.Total, &a.c.Unread, &a.c.Unseen, &a.valid, &now); err != nil {
			res.Close()
			return time.Time{}, fmt.Errorf("advance stream heads: %w", err)
		}
		heads[r] = a
	}
	res.Close()
	if err := res.Err(); err != nil {
		return time.Time{}, fmt.Errorf("advance stream heads: %w", err)
	}
	// Walk the rows backwards: the last row of a recipient is at its new
	// head, with the counts the statement returned.
	for i := len(rows) - 1; i >= 0; i-- {
		r := rows[i]
		a := heads[r.RecipientID]
		if a == nil {
			return time.Time{}, fmt.Errorf("advance stream heads: no head returned for %q", r.RecipientID)
		}
		r.Seq, r.Counts = a.head, nil
		if a.valid {
			c := a.c
			r.Counts = &c
		}
		a.head--
		a.c = a.c.Sub(event.Counts{Total: 1, Unread: 1, Unseen: 1})
	}
	return now, nil
}

// Heads returns where the streams of recipients stand, creating the state
// rows of those without one, after locking each row (FOR SHARE) so that no
// writer is in flight on it: every change at or below a returned head is
// committed, and every writer that locks a row after this sees what was
// registered before the call (see above). The locks last only as long as
// this call.
func (s *Store) Heads(ctx context.Context, recipients []string) (map[string]Head, error) {
	rcpts := slices.Clone(recipients)
	slices.Sort(rcpts)
	rcpts = slices.Compact(rcpts)
	out := make(map[string]Head, len(rcpts))
	err := s.InTx(ctx, func(tx *Tx) error {
		b := &pgx.Batch{}
		// Nothing of value is written: the commit need not wait for the disk.
		b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
		// A missing row is created (waiting for a writer creating it at the
		// same time), so that the lock below has a row to wait on.
		b.Queue(`INSERT INTO inbox_states (recipient_id, counts_epoch)
			SELECT r, (SELECT epoch FROM inbox_epoch) FROM unnest($1::text[]) AS u(r) ORDER BY r
			ON CONFLICT (recipient_id) DO NOTHING`, rcpts)
		b.Queue(`SELECT recipient_id, head, floor, total, unread, unseen, counts_epoch = (SELECT epoch FROM inbox_epoch)
			FROM inbox_states WHERE recipient_id = ANY($1) ORDER BY recipient_id FOR SHARE`, rcpts).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var r string
				var h Head
				var c event.Counts
				var valid bool
				if err := rows.Scan(&r, &h.Pos, &h.Floor, &c.Total, &c.Unread, &c.Unseen, &valid); err != nil {
					return err
				}
				if valid {
					h.Counts = &c
				}
				out[r] = h
			}
			return rows.Err()
		})
		return tx.tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("read stream heads: %w", err)
	}
	return out, nil
}

// PeekHeads returns the heads of recipients without locking or creating
// anything (a recipient without a state row is at 0): what a periodic
// check compares the clients' cursors with.
func (s *Store) PeekHeads(ctx context.Context, recipients []string) (map[string]int64, error) {
	rows, err := s.Pool.Query(ctx, `SELECT recipient_id, head FROM inbox_states WHERE recipient_id = ANY($1)`, recipients)
	if err != nil {
		return nil, fmt.Errorf("read stream heads: %w", err)
	}
	out := make(map[string]int64, len(recipients))
	for rows.Next() {
		var r string
		var h int64
		if err := rows.Scan(&r, &h); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read stream heads: %w", err)
		}
		out[r] = h
	}
	return out, rows.Err()
}

// PositionOf returns the position of the recipient's notification id;
// ErrNotFound when the recipient has none with that id.
func (s *Store) PositionOf(ctx context.Context, recipient string, id uuid.UUID) (int64, error) {
	var pos int64
	err := s.Pool.QueryRow(ctx, `SELECT seq FROM notifications WHERE id = $1 AND recipient_id = $2`, id, recipient).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("look up since: %w", err)
	}
	return pos, nil
}

// StreamAfter returns the recipient's changes after position pos, oldest
// first, at most limit of them, with where the stream stood when they were
// read (no change in the page is beyond it). Each change comes as the frame
// a client receives: a created change as the notification's created frame
// (its read state as it is now), or, when the notification is deleted since,
// a removed frame naming it; a state change as it was pushed.
func (s *Store) StreamAfter(ctx context.Context, recipient string, pos int64, limit int) (event.StreamPage, error) {
	var page event.StreamPage
	var c event.Counts
	var valid bool
	err := s.Pool.QueryRow(ctx, `SELECT head, floor, total, unread, unseen, counts_epoch = (SELECT epoch FROM inbox_epoch)
		FROM inbox_states WHERE recipient_id = $1`, recipient).
		Scan(&page.Head.Pos, &page.Head.Floor, &c.Total, &c.Unread, &c.Unseen, &valid)
	if errors.Is(err, pgx.ErrNoRows) {
		return page, nil // no change ever
	}
	if err != nil {
		return page, fmt.Errorf("read stream: %w", err)
	}
	if valid {
		page.Head.Counts = &c
	}
	if pos >= page.Head.Pos || limit <= 0 {
		return page, nil
	}
	// Both reads see every change up to the head read above (committed
	// before it), and nothing beyond it is taken.
	b := &pgx.Batch{}
	var rows []*event.Row
	var changes []event.StreamChange
	b.Queue(selectRecipientRows+` WHERE n.recipient_id = $1 AND n.seq > $2 AND n.seq <= $3 ORDER BY n.seq LIMIT $4`,
		recipient, pos, page.Head.Pos, limit).Query(func(r pgx.Rows) error {
		var err error
		rows, err = scanRows(r)
		return err
	})
	b.Queue(`SELECT pos, topic, data, total, unread, unseen FROM inbox_changes
		WHERE recipient_id = $1 AND pos > $2 AND pos <= $3 ORDER BY pos LIMIT $4`,
		recipient, pos, page.Head.Pos, limit).Query(func(r pgx.Rows) error {
		for r.Next() {
			var ch event.StreamChange
			var topic, data string
			var total, unread, unseen *int64
			if err := r.Scan(&ch.Pos, &topic, &data, &total, &unread, &unseen); err != nil {
				return err
			}
			var counts *event.Counts
			if total != nil && unread != nil && unseen != nil {
				counts = &event.Counts{Total: *total, Unread: *unread, Unseen: *unseen}
			}
			frame, err := event.MarshalChange(topic, recipient, ch.Pos, counts, json.RawMessage(data))
			if err != nil {
				return err
			}
			ch.Frame = frame
			changes = append(changes, ch)
		}
		return r.Err()
	})
	if err := s.Pool.SendBatch(ctx, b).Close(); err != nil {
		return page, fmt.Errorf("read stream: %w", err)
	}
	page.Changes = mergeChanges(recipient, rows, changes, limit)
	return page, nil
}

// mergeChanges merges the created changes (rows) and the others (changes),
// both by position, into the first limit changes.
func mergeChanges(recipient string, rows []*event.Row, changes []event.StreamChange, limit int) []event.StreamChange {
	out := make([]event.StreamChange, 0, min(limit, len(rows)+len(changes)))
	var b event.FrameBuilder
	i, j := 0, 0
	for len(out) < limit && (i < len(rows) || j < len(changes)) {
		if j < len(changes) && (i >= len(rows) || changes[j].Pos < rows[i].Seq) {
			out = append(out, changes[j])
			j++
			continue
		}
		r := rows[i]
		i++
		ch := event.StreamChange{Pos: r.Seq}
		if r.IsDeleted {
			ch.Frame, _ = event.MarshalChange(event.TopicNotificationRemoved, recipient, r.Seq, nil,
				event.Removed{IDs: []string{r.ID.String()}, Reason: event.RemovedDeleted})
		} else {
			r.Counts = nil
			ch.Frame = b.Frame(r)
		}
		out = append(out, ch)
	}
	return out
}

// appendChange records a state change of recipient at the next position of
// its stream and returns its frame. The transaction must hold the
// recipient's state row (lockState), whose head it had read as head.
func (t *Tx) appendChange(ctx context.Context, recipient string, head int64, topic string, counts *event.Counts, data any) (event.Push, error) {
	pos := head + 1
	raw, err := json.Marshal(data)
	if err != nil {
		return event.Push{}, fmt.Errorf("encode change: %w", err)
	}
	var total, unread, unseen *int64
	if counts != nil {
		total, unread, unseen = &counts.Total, &counts.Unread, &counts.Unseen
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE inbox_states SET head = $2 WHERE recipient_id = $1`, recipient, pos)
	b.Queue(`INSERT INTO inbox_changes (recipient_id, pos, topic, data, total, unread, unseen)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, recipient, pos, topic, string(raw), total, unread, unseen)
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return event.Push{}, fmt.Errorf("record change: %w", err)
	}
	frame, err := event.MarshalChange(topic, recipient, pos, counts, json.RawMessage(raw))
	if err != nil {
		return event.Push{}, err
	}
	return event.Push{Room: event.NotificationRoom(recipient), Pos: pos, Frame: frame}, nil
}

// Stager makes the changes a transaction commits reach their rooms: it runs
// in the transaction, before its commit (and after the changes' positions
// were taken), and settle then runs once with the outcome. nil: the changes
// are stored, not pushed.
type Stager func(ctx context.Context, tx *Tx, pushes []event.Push) (settle func(committed bool), err error)

// stageChanges runs s (when set) and returns its settle, or a no-op.
func stageChanges(ctx context.Context, s Stager, tx *Tx, pushes []event.Push) (func(bool), error) {
	if s == nil || len(pushes) == 0 {
		return func(bool) {}, nil
	}
	settle, err := s(ctx, tx, pushes)
	if err != nil {
		return nil, fmt.Errorf("stage pushes: %w", err)
	}
	return settle, nil
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
// looking at the rooms. A writer calls it after its changes took their
// positions (see above).
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
