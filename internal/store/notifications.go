package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
)

// Tx is one transaction.
type Tx struct {
	tx pgx.Tx
	st *Store
	// after runs once the transaction ended, with whether it committed:
	// the settles of changes staged by the store itself (revocation).
	after []func(committed bool)
}

// InTx runs fn in a transaction and commits it when fn returns nil.
func (s *Store) InTx(ctx context.Context, fn func(*Tx) error) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit; a panic in fn
	t := &Tx{tx: tx, st: s}
	err = fn(t)
	if err == nil {
		if err = tx.Commit(ctx); err != nil {
			err = fmt.Errorf("commit: %w", err)
		}
	} else {
		_ = tx.Rollback(context.WithoutCancel(ctx)) // before the settles: their changes are gone
	}
	for _, f := range t.after {
		f(err == nil)
	}
	return err
}

// InsertNotifications stores rows, in order, each at the next position of
// its recipient's stream (stream.go). Rows whose id exists already (a
// redelivered record) are left as they are and take no position (their Seq
// is 0). Inserted rows get Seq (their position), Counts and CreatedAt; the
// result says how many were inserted. Rows of one message must be adjacent
// and share the message's fields.
//
// The common case, no row stored before, is one COPY. A redelivery makes
// the COPY fail on the primary key: the positions are given back (the
// savepoint is rolled back) and the rows not stored yet are inserted alone.
func (t *Tx) InsertNotifications(ctx context.Context, rows []*event.Row) (int, error) {
	if len(rows) > MaxRowsPerTx {
		return 0, fmt.Errorf("insert notifications: %d rows in one transaction, the most is %d", len(rows), MaxRowsPerTx)
	}
	for _, r := range rows {
		r.Seq, r.Counts = 0, nil
	}
	fresh := rows
	// A second conflict means another writer stored some of these rows
	// meanwhile (two instances on one record during a rebalance): look
	// again. Every conflict shrinks fresh, and the attempts are bounded.
	for attempt := 0; len(fresh) > 0; attempt++ {
		err := t.copyNotifications(ctx, fresh)
		if err == nil {
			break
		}
		if !isUniqueViolation(err) || attempt == 3 {
			return 0, err
		}
		if fresh, err = t.notStored(ctx, fresh); err != nil {
			return 0, err
		}
	}
	return len(fresh), nil
}

// notStored returns the rows whose id is not in the table.
func (t *Tx) notStored(ctx context.Context, rows []*event.Row) ([]*event.Row, error) {
	ids := make([][16]byte, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	res, err := t.tx.Query(ctx, `SELECT id FROM notifications WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("look up stored notifications: %w", err)
	}
	stored, err := pgx.CollectRows(res, pgx.RowTo[[16]byte])
	if err != nil {
		return nil, fmt.Errorf("look up stored notifications: %w", err)
	}
	have := make(map[[16]byte]bool, len(stored))
	for _, id := range stored {
		have[id] = true
	}
	var out []*event.Row
	for _, r := range rows {
		if !have[r.ID] {
			out = append(out, r)
		}
	}
	return out, nil
}

// copyColumns are the columns copyNotifications writes.
var copyColumns = []string{"id", "seq", "created_at", "recipient_id", "type", "organizer_id", "merchant_id", "actor_id",
	"actor", "content", "action_url", "data", "occurred_at", "event_key", "source_topic", "source_partition", "source_offset",
	"event_id", "expires_at", "group_key", "group_count", "actors"}

// copyNotifications gives rows their positions and writes them with COPY,
// inside a savepoint: all of them, or none when one exists already (the
// savepoint is then rolled back, positions included, and rows' Seq and
// Counts are cleared).
func (t *Tx) copyNotifications(ctx context.Context, rows []*event.Row) error {
	if _, err := t.tx.Exec(ctx, `SAVEPOINT copy_notifications`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	now, err := t.advanceHeads(ctx, rows)
	if err == nil {
		err = t.copyRows(ctx, rows, now)
	}
	if err == nil {
		err = t.queueExpiry(ctx, rows)
	}
	if err != nil {
		for _, r := range rows {
			r.Seq, r.Counts = 0, nil
		}
		if _, rerr := t.tx.Exec(ctx, `ROLLBACK TO SAVEPOINT copy_notifications`); rerr != nil {
			return fmt.Errorf("copy notifications: %w (then: %v)", err, rerr)
		}
		return fmt.Errorf("copy notifications: %w", err)
	}
	for _, r := range rows {
		r.CreatedAt = now
	}
	return nil
}

// copyRows writes rows with COPY, each at its Seq.
func (t *Tx) copyRows(ctx context.Context, rows []*event.Row, now time.Time) error {
	var actor []byte
	var prev *event.Row
	_, err := t.tx.CopyFrom(ctx, pgx.Identifier{"notifications"}, copyColumns,
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			if prev == nil || !event.SameMessage(prev, r) {
				actor, _ = json.Marshal(r.Actor)
				prev = r
			}
			return []any{[16]byte(r.ID), r.Seq, now, r.RecipientID, r.Type, nullable(r.OrganizerID),
				nullable(r.MerchantID), r.ActorID, jsonText(actor), r.Content, nullable(r.ActionURL), jsonText(r.Data),
				r.OccurredAt, r.EventKey, r.Source.Topic, r.Source.Partition, r.Source.Offset,
				nullable(r.EventID), nullableTime(r.ExpiresAt), nullable(r.GroupKey), groupCount(r), groupActors(r)}, nil
		}))
	return err
}

// jsonText is JSON that pgx sends to a jsonb column as text.
type jsonText []byte

// Value makes pgx encode it as the jsonb text it is.
func (j jsonText) Value() (driver.Value, error) { return string(j), nil }

func nullableTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// groupCount and groupActors are a grouped row's columns (NULL on others).
func groupCount(r *event.Row) *int {
	if r.GroupKey == "" {
		return nil
	}
	n := max(r.GroupCount, 1)
	return &n
}

func groupActors(r *event.Row) any {
	if r.GroupKey == "" {
		return nil
	}
	b, _ := json.Marshal(r.Payload().Actors)
	return jsonText(b)
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Existing loads stored rows by id that were created after since.
func (t *Tx) Existing(ctx context.Context, ids []uuid.UUID, since time.Time) ([]*event.Row, error) {
	raw := make([][16]byte, len(ids))
	for i, id := range ids {
		raw[i] = id
	}
	return queryRows(ctx, t.tx, selectRows+` WHERE n.id = ANY($1) AND n.created_at > $2 ORDER BY n.seq`, raw, since)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func queryRows(ctx context.Context, q querier, sql string, args ...any) ([]*event.Row, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query notifications: %w", err)
	}
	return scanRows(rows)
}

// scanRows reads rows of the columns rowColumns lists, and closes them.
func scanRows(rows pgx.Rows) ([]*event.Row, error) {
	defer rows.Close()
	var out []*event.Row
	for rows.Next() {
		r := &event.Row{}
		var actor, actors []byte
		var expires *time.Time
		if err := rows.Scan(&r.ID, &r.Seq, &r.RecipientID, &r.Type, &r.OrganizerID, &r.MerchantID,
			&r.ActorID, &actor, &r.Content, &r.ActionURL, &r.Data, &r.OccurredAt, &r.EventKey,
			&r.IsRead, &r.IsSeen, &r.IsArchived, &r.IsDeleted,
			&r.CreatedAt, &r.Source.Topic, &r.Source.Partition, &r.Source.Offset,
			&r.EventID, &expires, &r.GroupKey, &r.GroupCount, &actors); err != nil {
			return nil, fmt.Errorf("read notification: %w", err)
		}
		_ = json.Unmarshal(actor, &r.Actor)
		if expires != nil {
			r.ExpiresAt = *expires
		}
		if actors != nil {
			_ = json.Unmarshal(actors, &r.Actors)
		}
		r.Data = event.StoredData(r.Data) // jsonb's key order and spaces: the bytes of the live push
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query notifications: %w", err)
	}
	return out, nil
}
