package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
)

// Tx is one transaction. A write transaction (InWriteTx) also knows its
// transaction id, from which the seq of the rows it inserts is made.
type Tx struct {
	tx   pgx.Tx
	xid  int64     // pg_current_xact_id(), 0 outside InWriteTx
	now  time.Time // the transaction's start (created_at of its rows)
	rows int64     // rows given a seq so far in this transaction
}

// InTx runs fn in a transaction and commits it when fn returns nil.
func (s *Store) InTx(ctx context.Context, fn func(*Tx) error) error {
	return s.inTx(ctx, false, fn)
}

// InWriteTx runs fn in a transaction that may insert notifications: it
// registers as a writer (see order.go) before its transaction id exists, so
// readers can tell which rows may still be committed below their horizon.
func (s *Store) InWriteTx(ctx context.Context, fn func(*Tx) error) error {
	return s.inTx(ctx, true, fn)
}

func (s *Store) inTx(ctx context.Context, write bool, fn func(*Tx) error) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	t := &Tx{tx: tx}
	if write {
		if t.xid, t.now, err = beginWrite(ctx, tx); err != nil {
			return err
		}
	}
	if err := fn(t); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Xid is the transaction id of a write transaction.
func (t *Tx) Xid() int64 { return t.xid }

// insertNotifications sends message-level columns once per message and
// joins them to the per-recipient rows in the server: most bytes (data,
// content) are the message's, and a message usually has several recipients.
const insertNotifications = `
WITH m AS MATERIALIZED (
	SELECT n, typ, org, merch, actor_id, actor::jsonb AS actor, content, action, data::jsonb AS data,
	       occ, ek, topic, part, off
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
	            $8::text[], $9::timestamptz[], $10::bytea[], $11::text[], $12::int[], $13::bigint[])
	     WITH ORDINALITY AS m(typ, org, merch, actor_id, actor, content, action, data, occ, ek, topic, part, off, n)
)
INSERT INTO notifications (id, seq, recipient_id, type, organizer_id, merchant_id, actor_id, actor, content,
                           action_url, data, occurred_at, event_key, source_topic, source_partition, source_offset)
SELECT r.id, $17::bigint + r.ord - 1, r.rcpt, m.typ, NULLIF(m.org, ''), NULLIF(m.merch, ''), m.actor_id, m.actor, m.content,
       NULLIF(m.action, ''), m.data, m.occ, m.ek, m.topic, m.part, m.off
FROM unnest($14::uuid[], $15::text[], $16::int[]) WITH ORDINALITY AS r(id, rcpt, msg, ord)
JOIN m ON m.n = r.msg
ORDER BY r.ord
ON CONFLICT (id) DO NOTHING
RETURNING id, seq, created_at`

// InsertNotifications stores rows, in order, in a write transaction. Rows
// whose id exists already (a redelivered record) are left as they are.
// Inserted rows get Seq (SeqOf the transaction id and their rank in it) and
// CreatedAt; the result says how many were inserted. Rows of one message
// must be adjacent and share the message's fields.
//
// The common case, no row stored before, goes through COPY; a redelivery
// makes COPY fail on the primary key, and the batch then takes the
// INSERT … ON CONFLICT path with the same seq values.
func (t *Tx) InsertNotifications(ctx context.Context, rows []*event.Row) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	if t.xid == 0 {
		return 0, errors.New("insert notifications: not in a write transaction (InWriteTx)")
	}
	if t.rows+int64(len(rows)) > MaxRowsPerTx {
		return 0, fmt.Errorf("insert notifications: %d rows in one transaction, the most is %d", t.rows+int64(len(rows)), MaxRowsPerTx)
	}
	first := SeqOf(t.xid, t.rows)
	t.rows += int64(len(rows))
	n, err := t.copyNotifications(ctx, rows, first)
	if err == nil {
		return n, nil
	}
	if !isUniqueViolation(err) {
		return 0, err
	}
	return t.insertNotifications(ctx, rows, first)
}

// copyColumns are the columns copyNotifications writes.
var copyColumns = []string{"id", "seq", "created_at", "recipient_id", "type", "organizer_id", "merchant_id", "actor_id",
	"actor", "content", "action_url", "data", "occurred_at", "event_key", "source_topic", "source_partition", "source_offset"}

// copyNotifications writes rows with COPY inside a savepoint: all of them,
// or none when one exists already (the savepoint is then rolled back). Row
// i gets seq first+i.
func (t *Tx) copyNotifications(ctx context.Context, rows []*event.Row, first int64) (int, error) {
	now := t.now
	if _, err := t.tx.Exec(ctx, `SAVEPOINT copy_notifications`); err != nil {
		return 0, fmt.Errorf("savepoint: %w", err)
	}
	var actor []byte
	var prev *event.Row
	_, err := t.tx.CopyFrom(ctx, pgx.Identifier{"notifications"}, copyColumns,
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			if prev == nil || !event.SameMessage(prev, r) {
				actor, _ = json.Marshal(r.Actor)
				prev = r
			}
			return []any{[16]byte(r.ID), first + int64(i), now, r.RecipientID, r.Type, nullable(r.OrganizerID),
				nullable(r.MerchantID), r.ActorID, jsonText(actor), r.Content, nullable(r.ActionURL), jsonText(r.Data),
				r.OccurredAt, r.EventKey, r.Source.Topic, r.Source.Partition, r.Source.Offset}, nil
		}))
	if err != nil {
		if _, rerr := t.tx.Exec(ctx, `ROLLBACK TO SAVEPOINT copy_notifications`); rerr != nil {
			return 0, fmt.Errorf("copy notifications: %w (then: %v)", err, rerr)
		}
		return 0, fmt.Errorf("copy notifications: %w", err)
	}
	for i, r := range rows {
		r.Seq, r.CreatedAt = first+int64(i), now
	}
	return len(rows), nil
}

// jsonText is JSON that pgx sends to a jsonb column as text.
type jsonText []byte

// Value makes pgx encode it as the jsonb text it is.
func (j jsonText) Value() (driver.Value, error) { return string(j), nil }

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// insertNotifications is the statement that tolerates rows stored before.
func (t *Tx) insertNotifications(ctx context.Context, rows []*event.Row, first int64) (int, error) {
	var (
		typ, org, merch, actorID, actor, content, action, data, topic []string
		occ                                                           []time.Time
		ek                                                            [][]byte
		part                                                          []int32
		off                                                           []int64
		ids                                                           [][16]byte // pgx's native uuid encoding
		rcpt                                                          []string
		msg                                                           []int32
	)
	var prev *event.Row
	for _, r := range rows {
		if prev == nil || !event.SameMessage(prev, r) {
			a, _ := json.Marshal(r.Actor)
			typ, org, merch = append(typ, r.Type), append(org, r.OrganizerID), append(merch, r.MerchantID)
			actorID, actor = append(actorID, r.ActorID), append(actor, string(a))
			content, action, data = append(content, r.Content), append(action, r.ActionURL), append(data, string(r.Data))
			occ, ek = append(occ, r.OccurredAt), append(ek, r.EventKey)
			topic, part, off = append(topic, r.Source.Topic), append(part, r.Source.Partition), append(off, r.Source.Offset)
			prev = r
		}
		ids, rcpt, msg = append(ids, [16]byte(r.ID)), append(rcpt, r.RecipientID), append(msg, int32(len(typ)))
	}
	res, err := t.tx.Query(ctx, insertNotifications, typ, org, merch, actorID, actor, content, action, data,
		occ, ek, topic, part, off, ids, rcpt, msg, first)
	if err != nil {
		return 0, fmt.Errorf("insert notifications: %w", err)
	}
	defer res.Close()
	byID := make(map[[16]byte]*event.Row, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	n := 0
	for res.Next() {
		var id [16]byte
		var seq int64
		var created time.Time
		if err := res.Scan(&id, &seq, &created); err != nil {
			return 0, fmt.Errorf("insert notifications: %w", err)
		}
		if r := byID[id]; r != nil {
			r.Seq, r.CreatedAt = seq, created
			n++
		}
	}
	if err := res.Err(); err != nil {
		return 0, fmt.Errorf("insert notifications: %w", err)
	}
	return n, nil
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
		var actor []byte
		if err := rows.Scan(&r.ID, &r.Seq, &r.RecipientID, &r.Type, &r.OrganizerID, &r.MerchantID,
			&r.ActorID, &actor, &r.Content, &r.ActionURL, &r.Data, &r.OccurredAt, &r.EventKey,
			&r.IsRead, &r.IsSeen, &r.IsArchived, &r.IsDeleted,
			&r.CreatedAt, &r.Source.Topic, &r.Source.Partition, &r.Source.Offset); err != nil {
			return nil, fmt.Errorf("read notification: %w", err)
		}
		_ = json.Unmarshal(actor, &r.Actor)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query notifications: %w", err)
	}
	return out, nil
}
