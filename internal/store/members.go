package store

import (
	"context"
	"fmt"
	"time"

	"github.com/signal-notify/signal/internal/event"
)

// Membership says a recipient belongs to an organizer or a merchant.
type Membership struct {
	Scope       string    `json:"scope"`
	ScopeID     string    `json:"scopeId"`
	RecipientID string    `json:"recipientId"`
	CreatedAt   time.Time `json:"createdAt"`
}

// AddMembers adds memberships; existing ones are kept. It returns how many
// were new.
func (s *Store) AddMembers(ctx context.Context, ms []Membership) (int64, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	scopes, ids, rcpts := split(ms)
	tag, err := s.Pool.Exec(ctx, `
		INSERT INTO memberships (scope, scope_id, recipient_id)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
		ON CONFLICT DO NOTHING`, scopes, ids, rcpts)
	if err != nil {
		return 0, fmt.Errorf("add members: %w", err)
	}
	return tag.RowsAffected(), nil
}

// RemoveMembers removes memberships and returns how many existed.
func (s *Store) RemoveMembers(ctx context.Context, ms []Membership) (int64, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	scopes, ids, rcpts := split(ms)
	tag, err := s.Pool.Exec(ctx, `
		DELETE FROM memberships
		WHERE (scope, scope_id, recipient_id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`,
		scopes, ids, rcpts)
	if err != nil {
		return 0, fmt.Errorf("remove members: %w", err)
	}
	return tag.RowsAffected(), nil
}

// ListMembers lists a group's members, or every membership when key.ID is
// empty (optionally of one scope), ordered.
func (s *Store) ListMembers(ctx context.Context, key event.ScopeKey) ([]Membership, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT scope, scope_id, recipient_id, created_at FROM memberships
		WHERE ($1 = '' OR scope = $1) AND ($2 = '' OR scope_id = $2)
		ORDER BY scope, scope_id, recipient_id`, key.Scope, key.ID)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer rows.Close()
	out := []Membership{}
	for rows.Next() {
		var m Membership
		if err := rows.Scan(&m.Scope, &m.ScopeID, &m.RecipientID, &m.CreatedAt); err != nil {
			return nil, fmt.Errorf("list members: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
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

func split(ms []Membership) (scopes, ids, rcpts []string) {
	for _, m := range ms {
		scopes, ids, rcpts = append(scopes, m.Scope), append(ids, m.ScopeID), append(rcpts, m.RecipientID)
	}
	return
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
