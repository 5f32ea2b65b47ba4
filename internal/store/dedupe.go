package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
)

// DedupeFilter selects duplicate groups: a group is in when any of its
// copies was created in [Since, Until) and matches Recipient and Type.
type DedupeFilter struct {
	Since, Until time.Time
	Recipient    string
	Type         string
}

// DuplicateGroup is one recipient's copies of one event.
type DuplicateGroup struct {
	RecipientID string      `json:"recipientId"`
	EventKey    []byte      `json:"eventKey"`
	Type        string      `json:"type"`
	Copies      int         `json:"copies"`
	Keep        uuid.UUID   `json:"keep"`
	Remove      []uuid.UUID `json:"remove"`
	AnyRead     bool        `json:"anyRead"`
	FirstAt     time.Time   `json:"firstCreatedAt"`
	LastAt      time.Time   `json:"lastCreatedAt"`
}

// Cursor is where a listing of duplicate groups resumes.
type Cursor struct {
	Recipient string
	EventKey  []byte
}

// findCandidates walks the (recipient_id, event_key) index in order from
// after and returns the keys held by more than one row: an index-only scan
// with a streaming group, no sort and no hash of the table, which stops
// after limit keys.
const findCandidates = `
SELECT recipient_id, event_key FROM notifications
WHERE (recipient_id, event_key) > ($1, $2) AND ($3 = '' OR recipient_id = $3)
GROUP BY recipient_id, event_key
HAVING count(*) > 1
ORDER BY recipient_id, event_key
LIMIT $4`

// describeGroups reads the copies of candidate groups and applies the
// filters that need them (type, creation window).
var describeGroups = func() string {
	read, _, _, deleted := stateSQL("n.recipient_id")
	return `
SELECT n.recipient_id, n.event_key, min(n.type), count(*),
       (array_agg(n.id ORDER BY n.seq))[1] AS keep,
       (array_agg(n.id ORDER BY n.seq))[2:] AS remove,
       bool_or(` + read + `), min(n.created_at), max(n.created_at)
FROM notifications n
LEFT JOIN notification_marks m ON m.id = n.id
JOIN unnest($1::text[], $2::bytea[]) AS g(r, k) ON n.recipient_id = g.r AND n.event_key = g.k
WHERE NOT ` + deleted + ` -- removed copies are deleted notifications: not counted again
GROUP BY n.recipient_id, n.event_key
HAVING count(*) > 1
   AND ($3 = '' OR bool_or(n.type = $3))
   AND bool_or(n.created_at >= $4 AND n.created_at < $5)
ORDER BY n.recipient_id, n.event_key`
}()

// DuplicateGroups examines up to limit duplicated keys after cursor and
// returns the groups among them that match f, and the cursor to continue
// from (nil when the table is exhausted).
func (s *Store) DuplicateGroups(ctx context.Context, f DedupeFilter, after Cursor, limit int) ([]DuplicateGroup, *Cursor, error) {
	if after.EventKey == nil {
		after.EventKey = []byte{}
	}
	rows, err := s.Pool.Query(ctx, findCandidates, after.Recipient, after.EventKey, f.Recipient, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("find duplicates: %w", err)
	}
	var rcpt []string
	var keys [][]byte
	for rows.Next() {
		var r string
		var k []byte
		if err := rows.Scan(&r, &k); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("find duplicates: %w", err)
		}
		rcpt, keys = append(rcpt, r), append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("find duplicates: %w", err)
	}
	var next *Cursor
	if len(rcpt) == limit {
		next = &Cursor{Recipient: rcpt[len(rcpt)-1], EventKey: keys[len(keys)-1]}
	}
	if len(rcpt) == 0 {
		return nil, next, nil
	}
	until := f.Until
	if until.IsZero() {
		until = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	drows, err := s.Pool.Query(ctx, describeGroups, rcpt, keys, f.Type, f.Since, until)
	if err != nil {
		return nil, nil, fmt.Errorf("describe duplicates: %w", err)
	}
	groups, err := pgx.CollectRows(drows, func(r pgx.CollectableRow) (DuplicateGroup, error) {
		var g DuplicateGroup
		err := r.Scan(&g.RecipientID, &g.EventKey, &g.Type, &g.Copies, &g.Keep, &g.Remove, &g.AnyRead, &g.FirstAt, &g.LastAt)
		return g, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("describe duplicates: %w", err)
	}
	return groups, next, nil
}

// ExplainDuplicates returns the plan of the scan over the table (tests and
// `signalctl dedupe --explain` check it walks the index).
func (s *Store) ExplainDuplicates(ctx context.Context, f DedupeFilter, limit int) (string, error) {
	rows, err := s.Pool.Query(ctx, "EXPLAIN "+findCandidates, "", []byte{}, f.Recipient, limit)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out, err
}

// RemoveDuplicates deletes the given copies of each group (as the inbox's
// delete does: a change of the recipient's stream, staged with stage, so
// every device drops them) and keeps its oldest, marked read when a copy
// was read. Each recipient's groups are one change (two with the read
// mark). A copy deleted already (a rerun after an interruption) is left
// alone. It returns the ids deleted.
//
// The read mark comes first: a run cut between the two changes leaves the
// group whole, read, and a rerun finds it again (the other way round, the
// rerun would find a single copy, no group, and the read state of the
// deleted copy would be lost).
func (s *Store) RemoveDuplicates(ctx context.Context, groups []DuplicateGroup, stage Stager) ([]uuid.UUID, error) {
	type work struct {
		remove []uuid.UUID
		read   []uuid.UUID
	}
	byRecipient := map[string]*work{}
	var order []string
	for _, g := range groups {
		w := byRecipient[g.RecipientID]
		if w == nil {
			w = &work{}
			byRecipient[g.RecipientID] = w
			order = append(order, g.RecipientID)
		}
		w.remove = append(w.remove, g.Remove...)
		if g.AnyRead {
			w.read = append(w.read, g.Keep)
		}
	}
	var removed []uuid.UUID
	for _, r := range order {
		w := byRecipient[r]
		for len(w.read) > 0 {
			n := min(len(w.read), event.MaxChangeIDs)
			if _, err := s.Mark(ctx, r, event.OpRead, w.read[:n], stage); err != nil {
				return removed, fmt.Errorf("remove duplicates: %w", err)
			}
			w.read = w.read[n:]
		}
		for len(w.remove) > 0 {
			n := min(len(w.remove), event.MaxChangeIDs)
			ch, err := s.Mark(ctx, r, event.OpDelete, w.remove[:n], stage)
			if err != nil {
				return removed, fmt.Errorf("remove duplicates: %w", err)
			}
			removed = append(removed, ch.IDs...)
			w.remove = w.remove[n:]
		}
	}
	return removed, nil
}

// AllDuplicateGroups lists every group that matches f, examining chunk
// duplicated keys at a time (DuplicateGroups).
func (s *Store) AllDuplicateGroups(ctx context.Context, f DedupeFilter, chunk int) ([]DuplicateGroup, error) {
	var all []DuplicateGroup
	var after Cursor
	for {
		groups, next, err := s.DuplicateGroups(ctx, f, after, chunk)
		if err != nil {
			return all, err
		}
		all = append(all, groups...)
		if next == nil {
			return all, nil
		}
		after = *next
	}
}

// RemoveAllDuplicates finds the groups that match f again, chunk keys at a
// time, and removes the copies of each chunk (RemoveDuplicates); done, when
// set, is told how many groups each chunk held. It stops between chunks
// once ctx ends and says so (interrupted): a run stopped anywhere is
// finished by running it again. It returns the ids removed, so far on an
// error.
func (s *Store) RemoveAllDuplicates(ctx context.Context, f DedupeFilter, chunk int, stage Stager, done func(groups int)) (removed []uuid.UUID, interrupted bool, err error) {
	var after Cursor
	for {
		if ctx.Err() != nil {
			return removed, true, nil
		}
		groups, next, err := s.DuplicateGroups(ctx, f, after, chunk)
		if err != nil {
			return removed, false, err
		}
		ids, err := s.RemoveDuplicates(ctx, groups, stage)
		if err != nil {
			return removed, false, err
		}
		removed = append(removed, ids...)
		if done != nil {
			done(len(groups))
		}
		if next == nil {
			return removed, false, nil
		}
		after = *next
	}
}
