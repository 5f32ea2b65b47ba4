package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/signal-notify/signal/internal/event"
)

// Who belongs to an organizer or a merchant. Every change — REST, CLI,
// the members.topic feed — goes through ChangeMembers or
// ApplyMemberChanges, which share the statements below and lock the group
// for the length of their transaction, so two changes of one group never
// interleave (two concurrent replaces would otherwise leave the union).

// A source of ids (func() (string, error)) yields recipient ids one after
// the other, then io.EOF. Any other error stops the change, which is
// rolled back and returns that very error: a REST body streams through
// one, and its errors are the caller's to map.

// SliceIDs is a source of ids over ids.
func SliceIDs(ids []string) func() (string, error) {
	i := 0
	return func() (string, error) {
		if i == len(ids) {
			return "", io.EOF
		}
		i++
		return ids[i-1], nil
	}
}

// memberLockClass keys the group locks (two-int advisory locks, a space of
// their own apart from the writer lock of order.go).
const memberLockClass = 0x5167

// memberStatements are the set-based statements of each operation, over a
// relation src of recipient ids (column id; duplicates are harmless); $1
// and $2 are the scope and the scope id. replace runs its delete, then its
// insert.
func memberStatements(op, src string) []string {
	insert := `INSERT INTO memberships (scope, scope_id, recipient_id) SELECT $1, $2, s.id FROM ` + src + ` s
		ON CONFLICT DO NOTHING`
	switch op {
	case event.OpAdd:
		return []string{insert}
	case event.OpRemove:
		return []string{`DELETE FROM memberships m USING ` + src + ` s
			WHERE m.scope = $1 AND m.scope_id = $2 AND m.recipient_id = s.id`}
	case event.OpReplace:
		return []string{`DELETE FROM memberships m WHERE m.scope = $1 AND m.scope_id = $2
			AND NOT EXISTS (SELECT 1 FROM ` + src + ` s WHERE s.id = m.recipient_id)`, insert}
	}
	panic("unknown membership operation " + op)
}

// stagedIDs is the session's temporary table a streamed change is copied
// into. It lives as long as the connection and is emptied at each commit
// (no catalog churn per request, nothing left behind).
const stagedIDs = `signal_member_ids`

// ChangeMembers applies op (event.OpAdd, OpRemove or OpReplace) with the
// ids of the source src to one group, in a transaction of its own. The ids
// are copied into a temporary table as they come (COPY, in bounded
// buffers), then applied with one or two set-based statements: a
// 100,000-member replace is never held in memory nor sent as one
// statement. Ids must be valid (event.ValidateID): the source is where a
// caller checks them.
func (s *Store) ChangeMembers(ctx context.Context, key event.ScopeKey, op string, src func() (string, error)) (event.MemberCounts, error) {
	var out event.MemberCounts
	err := s.InTx(ctx, func(t *Tx) error {
		if err := t.lockGroups(ctx, []event.ScopeKey{key}); err != nil {
			return err
		}
		if _, err := t.tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS `+stagedIDs+` (id text NOT NULL) ON COMMIT DELETE ROWS`); err != nil {
			return fmt.Errorf("stage member ids: %w", err)
		}
		copySrc := &idCopySource{next: src}
		if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{stagedIDs}, []string{"id"}, copySrc); err != nil {
			if copySrc.err != nil { // the source's own error, not PostgreSQL's "COPY failed"
				return copySrc.err
			}
			return fmt.Errorf("stage member ids: %w", err)
		}
		b := setBased()
		removed := t.removedList()
		queueMemberChange(b, key, op, stagedIDs, nil, &out, removed)
		if op == event.OpReplace {
			b.Queue(`SELECT count(DISTINCT id) FROM ` + stagedIDs).QueryRow(func(r pgx.Row) error { return r.Scan(&out.Members) })
		}
		if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("%s members of %s %s: %w", op, key.Scope, key.ID, err)
		}
		return t.revokeRemoved(ctx, key, deref(removed))
	})
	return out, err
}

// removedList is where a member change collects the members it removed:
// nil (not collected) unless revocation is on.
func (t *Tx) removedList() *[]string {
	if !t.revoking() {
		return nil
	}
	return &[]string{}
}

func deref(p *[]string) []string {
	if p == nil {
		return nil
	}
	return *p
}

// ApplyMemberChanges applies changes in order in the transaction (a batch
// of the members.topic feed), in one round trip after the group locks.
func (t *Tx) ApplyMemberChanges(ctx context.Context, changes []*event.MemberChange) ([]event.MemberCounts, error) {
	keys := make([]event.ScopeKey, len(changes))
	for i, c := range changes {
		keys[i] = c.Key()
	}
	if err := t.lockGroups(ctx, keys); err != nil {
		return nil, err
	}
	out := make([]event.MemberCounts, len(changes))
	removed := make([]*[]string, len(changes))
	b := setBased()
	for i, c := range changes {
		ids := c.RecipientIDs
		if ids == nil {
			ids = []string{}
		}
		removed[i] = t.removedList()
		queueMemberChange(b, c.Key(), c.Op, `(SELECT unnest($3::text[]) AS id)`, ids, &out[i], removed[i])
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("apply member changes: %w", err)
	}
	for i, c := range changes {
		if err := t.revokeRemoved(ctx, c.Key(), deref(removed[i])); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// setBased starts a batch of membership statements. They join a group's
// memberships with the ids of a change; right after a big change the
// table's statistics are stale, the planner expects a handful of members
// and picks a nested loop over the ids — quadratic, minutes for 100,000.
// Hash joins are linear whatever the estimates.
func setBased() *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(`SET LOCAL enable_nestloop = off`)
	return b
}

// queueMemberChange queues op's statements over the relation rel (which
// may use $3 = ids), adding what they did to counts, and the members
// removed to removed (unless nil).
func queueMemberChange(b *pgx.Batch, key event.ScopeKey, op, rel string, ids []string, counts *event.MemberCounts, removed *[]string) {
	args := []any{key.Scope, key.ID}
	if ids != nil {
		args = append(args, ids)
	}
	stmts := memberStatements(op, rel)
	for i, sql := range stmts {
		removes := op == event.OpRemove || (op == event.OpReplace && i == 0)
		if removes && removed != nil {
			b.Queue(sql+` RETURNING m.recipient_id`, args...).Query(func(rows pgx.Rows) error {
				gone, err := pgx.CollectRows(rows, pgx.RowTo[string])
				counts.Removed += int64(len(gone))
				*removed = append(*removed, gone...)
				return err
			})
			continue
		}
		b.Queue(sql, args...).Exec(func(tag pgconn.CommandTag) error {
			if removes {
				counts.Removed += tag.RowsAffected()
			} else {
				counts.Added += tag.RowsAffected()
			}
			return nil
		})
	}
}

// lockGroups takes the groups' locks until the transaction ends, in one
// order (sorted keys) so that two transactions never wait for each other
// in a cycle.
func (t *Tx) lockGroups(ctx context.Context, keys []event.ScopeKey) error {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Scope + ":" + k.ID
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if _, err := t.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::int, hashtext(n)) FROM unnest($2::text[]) WITH ORDINALITY AS u(n, o) ORDER BY o`,
		memberLockClass, names); err != nil {
		return fmt.Errorf("lock membership groups: %w", err)
	}
	return nil
}

// idCopySource feeds COPY from a source of ids and keeps its error.
type idCopySource struct {
	next func() (string, error)
	cur  [1]any
	err  error
}

func (c *idCopySource) Next() bool {
	id, err := c.next()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			c.err = err
		}
		return false
	}
	c.cur[0] = id
	return true
}

func (c *idCopySource) Values() ([]any, error) { return c.cur[:], nil }
func (c *idCopySource) Err() error             { return c.err }

// ListMembers returns up to limit members of a group, in recipient id
// order, after the id after ("" for the first page).
func (s *Store) ListMembers(ctx context.Context, key event.ScopeKey, after string, limit int) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT recipient_id FROM memberships
		WHERE scope = $1 AND scope_id = $2 AND recipient_id > $3
		ORDER BY recipient_id LIMIT $4`, key.Scope, key.ID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return collectStrings(rows, "list members")
}

// ScopeIDs returns up to limit ids of one scope's groups that have members,
// in order, after the id after ("" for the first page). It skips from group
// to group in the primary key (one index probe per group), not through
// every membership.
func (s *Store) ScopeIDs(ctx context.Context, scope, after string, limit int) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `
		WITH RECURSIVE g(id) AS (
			(SELECT scope_id FROM memberships WHERE scope = $1 AND scope_id > $2 ORDER BY scope_id LIMIT 1)
			UNION ALL
			SELECT (SELECT m.scope_id FROM memberships m WHERE m.scope = $1 AND m.scope_id > g.id ORDER BY m.scope_id LIMIT 1)
			FROM g WHERE g.id IS NOT NULL
		)
		SELECT id FROM g WHERE id IS NOT NULL LIMIT $3`, scope, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list %s ids: %w", scope, err)
	}
	return collectStrings(rows, "list "+scope+" ids")
}

func collectStrings(rows pgx.Rows, what string) ([]string, error) {
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// RecipientIDs lists distinct recipients known to memberships or
// notifications that start with prefix (shell completion).
func (s *Store) RecipientIDs(ctx context.Context, prefix string, limit int) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT recipient_id FROM (
			SELECT recipient_id FROM memberships WHERE recipient_id LIKE $1 || '%'
			UNION
			SELECT DISTINCT recipient_id FROM notifications WHERE recipient_id LIKE $1 || '%'
		) r ORDER BY 1 LIMIT $2`, escapeLike(prefix), limit)
	if err != nil {
		return nil, fmt.Errorf("list recipients: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func escapeLike(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' || s[i] == '_' || s[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}
