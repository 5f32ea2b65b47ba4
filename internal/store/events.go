package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
)

// Retracting and updating the notifications of a producer's event
// (DELETE and PATCH /events/{eventId}): a transaction of at most
// MaxRemovePerTx notifications at a time, each recipient's part one change
// of its stream. Both are idempotent: what is deleted, or already has the
// patch's values, is not taken again, so a repeat changes nothing and
// records no change.

// eventTargets reads up to MaxRemovePerTx of the event's notifications
// that are not deleted and match cond (SQL over n, $1 the event id, more
// arguments after).
func (t *Tx) eventTargets(ctx context.Context, cond string, args ...any) ([]target, error) {
	_, _, _, deleted := stateSQL("n.recipient_id")
	rows, err := t.tx.Query(ctx, `SELECT n.id, n.recipient_id FROM notifications n LEFT JOIN notification_marks m ON m.id = n.id
		WHERE n.event_id = $1 AND NOT `+deleted+cond+` LIMIT `+fmt.Sprint(MaxRemovePerTx), args...)
	if err != nil {
		return nil, fmt.Errorf("find the event's notifications: %w", err)
	}
	var out []target
	for rows.Next() {
		var tg target
		if err := rows.Scan(&tg.id, &tg.recipient); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find the event's notifications: %w", err)
		}
		out = append(out, tg)
	}
	rows.Close()
	return out, rows.Err()
}

// RetractEvent removes every notification made from the producer's event
// eventID, for every recipient (a removed change, reason retracted), and
// returns how many it removed (0 on a repeat).
func (s *Store) RetractEvent(ctx context.Context, eventID string, stage Stager) (int, error) {
	return s.eventLoop(ctx, stage, func(tx *Tx) (int, []event.Push, error) {
		targets, err := tx.eventTargets(ctx, "", eventID)
		if err != nil {
			return 0, nil, err
		}
		pushes, err := tx.removeRows(ctx, targets, event.RemovedRetracted)
		return len(targets), pushes, err
	})
}

// UpdateEvent replaces the fields p sets on every notification made from
// eventID (an updated change with the new values per recipient) and
// returns how many it changed (0 on a repeat).
func (s *Store) UpdateEvent(ctx context.Context, eventID string, p event.EventPatch, stage Stager) (int, error) {
	if p.Empty() {
		return 0, nil
	}
	// NULL parameters leave a column as it is; actionUrl "" is NULL stored.
	var content, action, data any
	if p.Content != nil {
		content = *p.Content
	}
	if p.ActionURL != nil {
		action = *p.ActionURL
	}
	if p.Data != nil {
		data = jsonText(p.Data)
	}
	const differs = ` AND (($2::text IS NOT NULL AND n.content <> $2) OR ($3::text IS NOT NULL AND coalesce(n.action_url, '') <> $3)
		OR ($4::jsonb IS NOT NULL AND n.data <> $4::jsonb))`
	return s.eventLoop(ctx, stage, func(tx *Tx) (int, []event.Push, error) {
		targets, err := tx.eventTargets(ctx, differs, eventID, content, action, data)
		if err != nil || len(targets) == 0 {
			return 0, nil, err
		}
		pushes, err := tx.updateRows(ctx, targets, p, content, action, data)
		return len(targets), pushes, err
	})
}

// updateRows writes the patch on targets and records an updated change
// per recipient.
func (t *Tx) updateRows(ctx context.Context, targets []target, p event.EventPatch, content, action, data any) ([]event.Push, error) {
	states, err := t.lockStates(ctx, targets)
	if err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(targets))
	byRcpt := map[string][]string{}
	for i, tg := range targets {
		ids[i] = tg.id
		byRcpt[tg.recipient] = append(byRcpt[tg.recipient], tg.id.String())
	}
	if _, err := t.tx.Exec(ctx, `UPDATE notifications SET content = coalesce($2, content),
		action_url = CASE WHEN $3::text IS NULL THEN action_url ELSE nullif($3, '') END,
		data = coalesce($4::jsonb, data) WHERE id = ANY($1)`, ids, content, action, data); err != nil {
		return nil, fmt.Errorf("update the event's notifications: %w", err)
	}
	rcpts := make([]string, 0, len(byRcpt))
	for r := range byRcpt {
		rcpts = append(rcpts, r)
	}
	slices.Sort(rcpts)
	datas := make([]any, len(rcpts))
	for i, r := range rcpts {
		datas[i] = event.ContentChange{IDs: byRcpt[r], Content: p.Content, ActionURL: p.ActionURL, Data: p.Data}
	}
	return t.recordChanges(ctx, rcpts, states, nil, event.TopicNotificationUpdated, datas)
}

// eventLoop runs step in transactions until one takes fewer than
// MaxRemovePerTx notifications, staging each one's pushes, and returns how
// many they took in all.
func (s *Store) eventLoop(ctx context.Context, stage Stager, step func(*Tx) (int, []event.Push, error)) (int, error) {
	total := 0
	for {
		var n int
		var settle func(bool)
		err := s.InTx(ctx, func(tx *Tx) error {
			settle = nil
			var pushes []event.Push
			var err error
			if n, pushes, err = step(tx); err != nil {
				return err
			}
			settle, err = stageChanges(ctx, stage, tx, pushes)
			return err
		})
		if settle != nil {
			settle(err == nil)
		}
		if err != nil {
			return total, err
		}
		total += n
		if n < MaxRemovePerTx {
			return total, nil
		}
	}
}
