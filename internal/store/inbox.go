package store

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
)

// ErrNotFound is returned when a named row does not exist (for this recipient).
var ErrNotFound = event.ErrNotFound

// ReplayAfter returns the recipient's notifications after the one with id
// since (whose seq it also returns) and below the seq bound below, oldest
// first: the caller delivers those from below on live, in order (see
// order.go). When more than limit exist it returns the newest limit of them
// and truncated=true: the seam with live pushes stays gap-free, and the
// client learns older ones were left out.
func (s *Store) ReplayAfter(ctx context.Context, recipient string, since uuid.UUID, limit int, below int64) (rows []*event.Row, truncated bool, sinceSeq int64, err error) {
	err = s.Pool.QueryRow(ctx, `SELECT seq FROM notifications WHERE id = $1 AND recipient_id = $2`, since, recipient).Scan(&sinceSeq)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, 0, ErrNotFound
	}
	if err != nil {
		return nil, false, 0, fmt.Errorf("replay: %w", err)
	}
	rows, err = queryRows(ctx, s.Pool, `SELECT * FROM (`+selectRow+`
		WHERE recipient_id = $1 AND seq > $2 AND seq < $4 ORDER BY seq DESC LIMIT $3) r ORDER BY seq`,
		recipient, sinceSeq, limit+1, below)
	if err != nil {
		return nil, false, 0, fmt.Errorf("replay: %w", err)
	}
	if len(rows) > limit {
		return rows[1:], true, sinceSeq, nil
	}
	return rows, false, sinceSeq, nil
}

// ListNotifications returns a page of the recipient's notifications, newest
// first, older than seq before (0: from the newest), unread only if asked.
func (s *Store) ListNotifications(ctx context.Context, recipient string, unread bool, limit int, before int64) ([]*event.Row, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	return queryRows(ctx, s.Pool, selectRow+`
		WHERE recipient_id = $1 AND seq < $2 AND (NOT $3 OR NOT is_read)
		ORDER BY seq DESC LIMIT $4`, recipient, before, unread, limit)
}

// UnreadCount counts the recipient's unread notifications.
func (s *Store) UnreadCount(ctx context.Context, recipient string) (int, error) {
	var n int
	err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE recipient_id = $1 AND NOT is_read`, recipient).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count unread: %w", err)
	}
	return n, nil
}

// MarkRead marks one of the recipient's notifications read and returns it;
// ErrNotFound when the recipient has no notification with that id.
func (s *Store) MarkRead(ctx context.Context, recipient string, id uuid.UUID) (*event.Row, error) {
	if _, err := s.Pool.Exec(ctx, `
		UPDATE notifications SET is_read = true, read_at = now()
		WHERE id = $1 AND recipient_id = $2 AND NOT is_read`, id, recipient); err != nil {
		return nil, fmt.Errorf("mark read: %w", err)
	}
	rows, err := queryRows(ctx, s.Pool, selectRow+` WHERE id = $1 AND recipient_id = $2`, id, recipient)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	return rows[0], nil
}

// MarkAllRead marks every unread notification of the recipient read.
func (s *Store) MarkAllRead(ctx context.Context, recipient string) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `
		UPDATE notifications SET is_read = true, read_at = now() WHERE recipient_id = $1 AND NOT is_read`, recipient)
	if err != nil {
		return 0, fmt.Errorf("mark all read: %w", err)
	}
	return tag.RowsAffected(), nil
}
