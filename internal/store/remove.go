package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
)

// Removing notifications for the system, not the recipient (expiry,
// retraction, revocation): each recipient that loses some gets one change
// of its stream, observation/signal/notification/removed with the ids and
// the reason, and its counts follow, as a delete by the recipient would
// (a notification_marks is_deleted mark). Many recipients are handled in
// one transaction with a few set-based statements, so a retraction of an
// organizer's event reaches 10,000 inboxes in a handful of round trips.

// MaxRemovePerTx bounds the notifications one removal transaction takes.
const MaxRemovePerTx = 5000

// target is one notification to remove.
type target struct {
	id        uuid.UUID
	recipient string
}

// lockedState is a recipient's state row as the removal locked it.
type lockedState struct {
	head   int64
	valid  bool
	counts Counts
}

// removeRows removes targets (at most MaxRemovePerTx) in tx for reason and
// returns the pushes of the changes it recorded (none for a notification
// already deleted or gone). The state rows of the targets' recipients are
// locked in the order of their ids, as ingest locks them.
func (t *Tx) removeRows(ctx context.Context, targets []target, reason string) ([]event.Push, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	states, err := t.lockStates(ctx, targets)
	if err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(targets))
	for i, tg := range targets {
		ids[i] = tg.id
	}
	read, seen, archived, deleted := stateSQL("n.recipient_id")
	rows, err := t.tx.Query(ctx, `SELECT n.recipient_id, n.id, n.seq, `+read+`, `+seen+`, `+archived+`, `+deleted+`
		FROM notifications n LEFT JOIN notification_marks m ON m.id = n.id
		WHERE n.id = ANY($1) ORDER BY n.recipient_id, n.seq`, ids)
	if err != nil {
		return nil, fmt.Errorf("remove notifications: %w", err)
	}
	var rm removal
	for rows.Next() {
		var r string
		var id uuid.UUID
		var seq int64
		var old event.States
		if err := rows.Scan(&r, &id, &seq, &old.Read, &old.Seen, &old.Archived, &old.Deleted); err != nil {
			rows.Close()
			return nil, fmt.Errorf("remove notifications: %w", err)
		}
		if !old.Deleted {
			rm.add(r, id, seq, old)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("remove notifications: %w", err)
	}
	return t.applyRemoval(ctx, &rm, states, reason)
}

// lockStates locks (creating when missing) the state rows of the targets'
// recipients, sorted, and returns them.
func (t *Tx) lockStates(ctx context.Context, targets []target) (map[string]*lockedState, error) {
	rcpts := make([]string, 0, len(targets))
	for _, tg := range targets {
		rcpts = append(rcpts, tg.recipient)
	}
	slices.Sort(rcpts)
	rcpts = slices.Compact(rcpts)
	res, err := t.tx.Query(ctx, `
		INSERT INTO inbox_states AS s (recipient_id, counts_epoch)
		SELECT r, (SELECT epoch FROM inbox_epoch) FROM unnest($1::text[]) AS u(r) ORDER BY r
		ON CONFLICT (recipient_id) DO UPDATE SET updated_at = now()
		RETURNING recipient_id, head, counts_epoch = (SELECT epoch FROM inbox_epoch), total, unread, unseen`, rcpts)
	if err != nil {
		return nil, fmt.Errorf("lock inbox states: %w", err)
	}
	out := make(map[string]*lockedState, len(rcpts))
	for res.Next() {
		var r string
		st := &lockedState{}
		if err := res.Scan(&r, &st.head, &st.valid, &st.counts.Total, &st.counts.Unread, &st.counts.Unseen); err != nil {
			res.Close()
			return nil, fmt.Errorf("lock inbox states: %w", err)
		}
		out[r] = st
	}
	res.Close()
	return out, res.Err()
}

// removal is what a removal changes, by recipient, in recipient order.
type removal struct {
	rcpts []string
	ids   map[string][]uuid.UUID
	gone  map[string]Counts // what the removed notifications counted
	// The marks to write, one per notification.
	markIDs   []uuid.UUID
	markRcpts []string
	markSeqs  []int64
}

func (rm *removal) add(r string, id uuid.UUID, seq int64, old event.States) {
	if rm.ids == nil {
		rm.ids, rm.gone = map[string][]uuid.UUID{}, map[string]Counts{}
	}
	if _, ok := rm.ids[r]; !ok {
		rm.rcpts = append(rm.rcpts, r)
	}
	rm.ids[r] = append(rm.ids[r], id)
	rm.gone[r] = rm.gone[r].Add(event.CountOf(old))
	rm.markIDs, rm.markRcpts, rm.markSeqs = append(rm.markIDs, id), append(rm.markRcpts, r), append(rm.markSeqs, seq)
}

// applyRemoval writes the marks and one removed change per recipient,
// and returns the changes' pushes.
func (t *Tx) applyRemoval(ctx context.Context, rm *removal, states map[string]*lockedState, reason string) ([]event.Push, error) {
	if len(rm.rcpts) == 0 {
		return nil, nil
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO notification_marks AS m (id, recipient_id, seq, is_deleted)
		SELECT id, r, seq, true FROM unnest($1::uuid[], $2::text[], $3::bigint[]) AS u(id, r, seq)
		ON CONFLICT (id) DO UPDATE SET is_deleted = true, updated_at = now()`, rm.markIDs, rm.markRcpts, rm.markSeqs); err != nil {
		return nil, fmt.Errorf("remove notifications: %w", err)
	}
	datas := make([]any, len(rm.rcpts))
	for i, r := range rm.rcpts {
		data := event.Removed{IDs: make([]string, len(rm.ids[r])), Reason: reason}
		for j, id := range rm.ids[r] {
			data.IDs[j] = id.String()
		}
		datas[i] = data
	}
	return t.recordChanges(ctx, rm.rcpts, states, rm.gone, event.TopicNotificationRemoved, datas)
}

// recordChanges records one change of topic per recipient of rcpts (their
// state rows locked: lockStates), with data datas[i], at the next position
// of its stream; its counts drop by gone[r]. It returns the pushes.
func (t *Tx) recordChanges(ctx context.Context, rcpts []string, states map[string]*lockedState, gone map[string]Counts, topic string, datas []any) ([]event.Push, error) {
	n := len(rcpts)
	heads, totals, unreads, unseens := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	raws := make([]string, n)
	pushes := make([]event.Push, 0, n)
	for i, r := range rcpts {
		st := states[r]
		if st == nil {
			return nil, fmt.Errorf("record changes: no state row locked for %q", r)
		}
		if !st.valid {
			row, err := recount(ctx, t.tx, r, stateRow{head: st.head})
			if err != nil {
				return nil, err
			}
			st.counts, st.valid = row.counts, true
		}
		st.counts = st.counts.Sub(gone[r])
		st.head++
		raw, err := json.Marshal(datas[i])
		if err != nil {
			return nil, fmt.Errorf("encode change: %w", err)
		}
		c := st.counts
		heads[i], totals[i], unreads[i], unseens[i], raws[i] = st.head, c.Total, c.Unread, c.Unseen, string(raw)
		frame, err := event.MarshalChange(topic, r, st.head, &c, json.RawMessage(raw))
		if err != nil {
			return nil, err
		}
		pushes = append(pushes, event.Push{Room: event.NotificationRoom(r), Pos: st.head, Frame: frame})
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE inbox_states s SET head = u.h, total = u.t, unread = u.ur, unseen = u.us
		FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(r, h, t, ur, us)
		WHERE s.recipient_id = u.r`, rcpts, heads, totals, unreads, unseens)
	b.Queue(`INSERT INTO inbox_changes (recipient_id, pos, topic, data, total, unread, unseen)
		SELECT r, h, $6, d, t, ur, us FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $7::text[]) AS u(r, h, t, ur, us, d)`,
		rcpts, heads, totals, unreads, unseens, topic, raws)
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("record changes: %w", err)
	}
	return pushes, nil
}
