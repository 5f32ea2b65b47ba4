package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
)

// DeadLetterFilter selects dead letters.
type DeadLetterFilter struct {
	IDs      []int64
	Reason   string
	Replayed bool // include ones already replayed
	Before   time.Time
	Limit    int
}

// DeadLetterStats counts dead letters waiting for an operator.
type DeadLetterStats struct {
	Pending  int            `json:"pending"`
	ByReason map[string]int `json:"byReason"`
	Oldest   *time.Time     `json:"oldest"`
}

// PendingDeadLetters counts dead letters not replayed yet.
func (s *Store) PendingDeadLetters(ctx context.Context) (DeadLetterStats, error) {
	st := DeadLetterStats{ByReason: map[string]int{}}
	rows, err := s.Pool.Query(ctx, `
		SELECT reason, count(*), min(created_at) FROM dead_letters WHERE replayed_at IS NULL GROUP BY reason`)
	if err != nil {
		return st, fmt.Errorf("count dead letters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var reason string
		var n int
		var oldest time.Time
		if err := rows.Scan(&reason, &n, &oldest); err != nil {
			return st, err
		}
		st.ByReason[reason] = n
		st.Pending += n
		if st.Oldest == nil || oldest.Before(*st.Oldest) {
			o := oldest.UTC()
			st.Oldest = &o
		}
	}
	return st, rows.Err()
}

// ListDeadLetters returns dead letters, oldest first, in record order.
func (s *Store) ListDeadLetters(ctx context.Context, f DeadLetterFilter) ([]*event.DeadLetter, error) {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	before := f.Before
	if before.IsZero() {
		before = time.Now().Add(time.Hour)
	}
	rows, err := s.Pool.Query(ctx, `
		SELECT id, topic, partition, "offset", record_timestamp, key, value, headers, reason, detail, created_at, replayed_at
		FROM dead_letters
		WHERE (coalesce(cardinality($1::bigint[]), 0) = 0 OR id = ANY($1))
		  AND ($2 = '' OR reason = $2)
		  AND ($3 OR replayed_at IS NULL)
		  AND created_at < $4
		ORDER BY created_at, topic, partition, "offset" LIMIT $5`, f.IDs, f.Reason, f.Replayed, before, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return collectDeadLetters(rows)
}

func collectDeadLetters(rows pgx.Rows) ([]*event.DeadLetter, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*event.DeadLetter, error) {
		d := &event.DeadLetter{}
		var headers []byte
		err := r.Scan(&d.ID, &d.Source.Topic, &d.Source.Partition, &d.Source.Offset, &d.Source.Timestamp,
			&d.Key, &d.Value, &headers, &d.Reason, &d.Detail, &d.CreatedAt, &d.ReplayedAt)
		if err == nil {
			_ = json.Unmarshal(headers, &d.Headers)
		}
		return d, err
	})
}

// WaitingDeadLetters counts the waiting dead letters f selects (IDs and
// Reason; Limit is ignored) and returns the largest id among them: a replay
// handles those and not the ones that arrive while it runs.
func (s *Store) WaitingDeadLetters(ctx context.Context, f DeadLetterFilter) (n int, maxID int64, err error) {
	err = s.Pool.QueryRow(ctx, `
		SELECT count(*), coalesce(max(id), 0) FROM dead_letters
		WHERE (coalesce(cardinality($1::bigint[]), 0) = 0 OR id = ANY($1))
		  AND ($2 = '' OR reason = $2) AND replayed_at IS NULL`, f.IDs, f.Reason).Scan(&n, &maxID)
	if err != nil {
		return 0, 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, maxID, nil
}

// PageDeadLetters returns at most f.Limit waiting dead letters that f
// selects with ids in (after, upTo], in id order: one page of a keyset walk,
// so a replay holds one page in memory whatever the table's size.
func (s *Store) PageDeadLetters(ctx context.Context, f DeadLetterFilter, after, upTo int64) ([]*event.DeadLetter, error) {
	if f.Limit <= 0 {
		f.Limit = 500
	}
	rows, err := s.Pool.Query(ctx, `
		SELECT id, topic, partition, "offset", record_timestamp, key, value, headers, reason, detail, created_at, replayed_at
		FROM dead_letters
		WHERE (coalesce(cardinality($1::bigint[]), 0) = 0 OR id = ANY($1))
		  AND ($2 = '' OR reason = $2) AND replayed_at IS NULL
		  AND id > $3 AND id <= $4
		ORDER BY id LIMIT $5`, f.IDs, f.Reason, after, upTo, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return collectDeadLetters(rows)
}

// MarkReplayed records that dead letters became notifications.
func (s *Store) MarkReplayed(ctx context.Context, ids []int64) error {
	_, err := s.Pool.Exec(ctx, `UPDATE dead_letters SET replayed_at = now() WHERE id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("mark replayed: %w", err)
	}
	return nil
}

// PurgeDeadLetters deletes dead letters created before t and returns how many.
func (s *Store) PurgeDeadLetters(ctx context.Context, before time.Time, reason string) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM dead_letters WHERE created_at < $1 AND ($2 = '' OR reason = $2)`, before, reason)
	if err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Bounds of what a dead letter stores as text.
const (
	// MaxDeadLetterDetail bounds a dead letter's detail (an error message,
	// which may quote the record).
	MaxDeadLetterDetail = 4096
	maxDeadLetterTopic  = 512
	maxDeadLetterReason = 64
)

// Record timestamps a dead letter can store: PostgreSQL's timestamptz ends
// in 294276, and pgx would wrap a time past it silently. A Kafka timestamp
// is any int64 of milliseconds, so it is clamped to years 1–9999; the
// record stays found by topic, partition and offset.
var (
	minStoredTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxStoredTime = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
)

// StorableTime is t clamped to what record_timestamp can hold.
func StorableTime(t time.Time) time.Time {
	switch {
	case t.Before(minStoredTime):
		return minStoredTime
	case t.After(maxStoredTime):
		return maxStoredTime
	}
	return t
}

// InsertDeadLetters stores records that cannot become notifications. A
// record already stored (redelivery, replay) is not stored twice; its
// reason is updated when it failed differently this time.
//
// Whatever the record holds, the row can be stored: key and value are
// bytea, header keys that are not text are kept as base64 (event.Header),
// texts made from input are made valid and bounded, and the timestamp is
// clamped to PostgreSQL's range (StorableTime).
func (t *Tx) InsertDeadLetters(ctx context.Context, dls []*event.DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	var (
		topic, headers, reason, detail []string
		part                           []int32
		off                            []int64
		ts                             []time.Time
		key, value                     [][]byte
	)
	for _, d := range dls {
		h := d.Headers
		if h == nil {
			h = []event.Header{}
		}
		hb, err := json.Marshal(h)
		if err != nil { // cannot happen: event.Header always encodes
			return fmt.Errorf("insert dead letters: headers: %w", err)
		}
		topic = append(topic, event.StorableText(d.Source.Topic, maxDeadLetterTopic))
		part, off, ts = append(part, d.Source.Partition), append(off, d.Source.Offset), append(ts, StorableTime(d.Source.Timestamp))
		key, value, headers = append(key, d.Key), append(value, d.Value), append(headers, string(hb))
		reason = append(reason, event.StorableText(d.Reason, maxDeadLetterReason))
		detail = append(detail, event.StorableText(d.Detail, MaxDeadLetterDetail))
	}
	_, err := t.tx.Exec(ctx, `
		INSERT INTO dead_letters (topic, partition, "offset", record_timestamp, key, value, headers, reason, detail)
		SELECT t, p, o, ts, k, v, h::jsonb, r, d
		FROM unnest($1::text[], $2::int[], $3::bigint[], $4::timestamptz[], $5::bytea[], $6::bytea[], $7::text[], $8::text[], $9::text[])
		     AS u(t, p, o, ts, k, v, h, r, d)
		ON CONFLICT (topic, partition, "offset", record_timestamp)
		DO UPDATE SET reason = EXCLUDED.reason, detail = EXCLUDED.detail
		WHERE (dead_letters.reason, dead_letters.detail) IS DISTINCT FROM (EXCLUDED.reason, EXCLUDED.detail)`,
		topic, part, off, ts, key, value, headers, reason, detail)
	if err != nil {
		return fmt.Errorf("insert dead letters: %w", err)
	}
	return nil
}
