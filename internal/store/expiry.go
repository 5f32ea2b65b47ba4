package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
)

// Expiry: a notification with expires_at is queued in expiry_queue when it
// is stored (in its transaction), and the sweeper (ExpireDue, run by every
// instance a few times a second) takes what is due with FOR UPDATE SKIP
// LOCKED and removes it in the transaction that deletes it from the queue:
// instances share the work without taking a notification twice, a sweep
// that fails leaves its rows queued for the next, and the queue holds only
// what is still to expire (no scan over the expired ones of the past).

// queueExpiry queues the rows that expire.
func (t *Tx) queueExpiry(ctx context.Context, rows []*event.Row) error {
	var ids []uuid.UUID
	var rcpts []string
	var at []time.Time
	for _, r := range rows {
		if !r.ExpiresAt.IsZero() {
			ids, rcpts, at = append(ids, r.ID), append(rcpts, r.RecipientID), append(at, r.ExpiresAt)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO expiry_queue (id, recipient_id, expires_at)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) ON CONFLICT (id) DO NOTHING`, ids, rcpts, at); err != nil {
		return fmt.Errorf("queue expiry: %w", err)
	}
	return nil
}

// ExpireDue removes every notification whose expires_at has passed from
// its recipient's inbox (a removed change, reason expired, staged with
// stage), a transaction of at most MaxRemovePerTx at a time, and returns
// how many it took from the queue.
func (s *Store) ExpireDue(ctx context.Context, stage Stager) (int, error) {
	total := 0
	for {
		n, err := s.expireSome(ctx, stage)
		total += n
		if err != nil || n < MaxRemovePerTx {
			return total, err
		}
	}
}

func (s *Store) expireSome(ctx context.Context, stage Stager) (int, error) {
	var n int
	var settle func(bool)
	err := s.InTx(ctx, func(tx *Tx) error {
		settle, n = nil, 0
		rows, err := tx.tx.Query(ctx, `DELETE FROM expiry_queue q USING (
				SELECT id FROM expiry_queue WHERE expires_at <= now() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
			WHERE q.id = due.id RETURNING q.id, q.recipient_id`, MaxRemovePerTx)
		if err != nil {
			return fmt.Errorf("take due expiries: %w", err)
		}
		var targets []target
		for rows.Next() {
			var tg target
			if err := rows.Scan(&tg.id, &tg.recipient); err != nil {
				rows.Close()
				return fmt.Errorf("take due expiries: %w", err)
			}
			targets = append(targets, tg)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("take due expiries: %w", err)
		}
		n = len(targets)
		pushes, err := tx.removeRows(ctx, targets, event.RemovedExpired)
		if err != nil {
			return err
		}
		settle, err = stageChanges(ctx, stage, tx, pushes)
		return err
	})
	if settle != nil {
		settle(err == nil)
	}
	return n, err
}
