package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// NotifyRequest is what the database holds of a POST /notifications
// Idempotency-Key: its number and time, the identity of the request's rows
// (internal/event/id.go), and the ids it made once it finished.
type NotifyRequest struct {
	ID  int64
	At  time.Time
	IDs []uuid.UUID // nil: not finished (or it crashed before): make them again
}

// ClaimNotifyKey returns the request of key, recording it (at the
// database's time) when it is the first. Two requests with one key, on any
// instances, get the same answer: the second insert waits for the first's
// commit on the primary key and then returns its row. The rows made from
// one answer have the same ids, so a repeat creates no second notification.
func (s *Store) ClaimNotifyKey(ctx context.Context, key string) (NotifyRequest, error) {
	var r NotifyRequest
	err := s.asyncTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO notify_requests AS q (key, at) VALUES ($1, date_trunc('milliseconds', now()))
			ON CONFLICT (key) DO UPDATE SET key = q.key
			RETURNING id, at, ids`, key).Scan(&r.ID, &r.At, &r.IDs)
	})
	if err != nil {
		return r, fmt.Errorf("claim idempotency key: %w", err)
	}
	return r, nil
}

// asyncTx runs fn in a transaction whose commit does not wait for the
// disk. A request's claim is written before its notifications, whose
// commit flushes the log up to it: it is durable whenever they are, and a
// claim lost in a crash made nothing. Its ids are a shortcut: lost, a
// repeat makes them again from the claim (the rows exist). One disk flush
// per request instead of three.
func (s *Store) asyncTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		return fn(tx)
	})
}

// FinishNotifyKey records the ids a request made: a repeat answers them
// without making anything.
func (s *Store) FinishNotifyKey(ctx context.Context, key string, ids []uuid.UUID) error {
	if ids == nil {
		ids = []uuid.UUID{}
	}
	err := s.asyncTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE notify_requests SET ids = $2 WHERE key = $1`, key, ids)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish idempotency key: %w", err)
	}
	return nil
}
