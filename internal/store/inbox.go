package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
)

// ErrNotFound is returned when a named row does not exist (for this recipient).
var ErrNotFound = event.ErrNotFound

// ReplayAfter returns the recipient's notifications stored after the one
// with id since (whose seq it also returns), oldest first. When more than limit exist it returns the
// newest limit of them and truncated=true: the seam with live pushes stays
// gap-free, and the client learns older ones were left out.
func (s *Store) ReplayAfter(ctx context.Context, recipient string, since uuid.UUID, limit int) (rows []*event.Row, truncated bool, sinceSeq int64, err error) {
	err = s.Pool.QueryRow(ctx, `SELECT seq FROM notifications WHERE id = $1 AND recipient_id = $2`, since, recipient).Scan(&sinceSeq)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, 0, ErrNotFound
	}
	if err != nil {
		return nil, false, 0, fmt.Errorf("replay: %w", err)
	}
	rows, err = queryRows(ctx, s.Pool, `SELECT * FROM (`+selectRow+`
		WHERE recipient_id = $1 AND seq > $2 ORDER BY seq DESC LIMIT $3) r ORDER BY seq`,
		recipient, sinceSeq, limit+1)
	if err != nil {
		return nil, false, 0, fmt.Errorf("replay: %w", err)
	}
	if len(rows) > limit {
		return rows[1:], true, sinceSeq, nil
	}
	return rows, false, sinceSeq, nil
}
