package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
)

// Preferences returns what recipient mutes (empty lists when nothing).
func (s *Store) Preferences(ctx context.Context, recipient string) (event.Preferences, error) {
	p := event.Preferences{MutedTypes: []string{}, MutedOrganizers: []string{}, MutedMerchants: []string{}}
	err := s.Pool.QueryRow(ctx, `SELECT muted_types, muted_organizers, muted_merchants
		FROM recipient_preferences WHERE recipient_id = $1`, recipient).Scan(&p.MutedTypes, &p.MutedOrganizers, &p.MutedMerchants)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("read preferences: %w", err)
	}
	return p, nil
}

// SetPreferences replaces what recipient mutes. Preferences that mute
// nothing delete the row: a recipient without a row is the common case,
// and an empty table lets ingest skip the lookup.
func (s *Store) SetPreferences(ctx context.Context, recipient string, p event.Preferences) error {
	var err error
	if p.Empty() {
		_, err = s.Pool.Exec(ctx, `DELETE FROM recipient_preferences WHERE recipient_id = $1`, recipient)
	} else {
		_, err = s.Pool.Exec(ctx, `
			INSERT INTO recipient_preferences (recipient_id, muted_types, muted_organizers, muted_merchants)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (recipient_id) DO UPDATE SET muted_types = EXCLUDED.muted_types,
				muted_organizers = EXCLUDED.muted_organizers, muted_merchants = EXCLUDED.muted_merchants, updated_at = now()`,
			recipient, nonNil(p.MutedTypes), nonNil(p.MutedOrganizers), nonNil(p.MutedMerchants))
	}
	if err != nil {
		return fmt.Errorf("store preferences: %w", err)
	}
	return nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// membersSQL resolves groups: $1 scopes, $2 scope ids.
const membersSQL = `
	SELECT scope, scope_id, recipient_id FROM memberships
	WHERE (scope, scope_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
	ORDER BY scope, scope_id, recipient_id`

// preferencesSQL reads the preferences of a batch's recipients: those named
// in $1 and the members of the groups $2/$3. The EXISTS is a one-time
// filter: while nobody has preferences, the statement reads one empty
// table and nothing else.
const preferencesSQL = `
	SELECT p.recipient_id, p.muted_types, p.muted_organizers, p.muted_merchants
	FROM recipient_preferences p
	WHERE EXISTS (SELECT FROM recipient_preferences) AND p.recipient_id = ANY($1::text[])
	UNION
	SELECT p.recipient_id, p.muted_types, p.muted_organizers, p.muted_merchants
	FROM memberships m JOIN recipient_preferences p ON p.recipient_id = m.recipient_id
	WHERE EXISTS (SELECT FROM recipient_preferences)
	  AND (m.scope, m.scope_id) IN (SELECT * FROM unnest($2::text[], $3::text[]))`

// Recipients resolves a batch in one round trip: the members of each
// group (ordered by recipient id), and the preferences of every recipient
// concerned — users named in users, members of keys — keyed by recipient
// (only those who mute something).
func (t *Tx) Recipients(ctx context.Context, keys []event.ScopeKey, users []string) (map[event.ScopeKey][]string, map[string]*event.Preferences, error) {
	members := make(map[event.ScopeKey][]string, len(keys))
	prefs := map[string]*event.Preferences{}
	if len(keys) == 0 && len(users) == 0 {
		return members, prefs, nil
	}
	scopes, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		scopes[i], ids[i] = k.Scope, k.ID
	}
	b := &pgx.Batch{}
	if len(keys) > 0 {
		b.Queue(membersSQL, scopes, ids).Query(func(rows pgx.Rows) error {
			var k event.ScopeKey
			var r string
			_, err := pgx.ForEachRow(rows, []any{&k.Scope, &k.ID, &r}, func() error {
				members[k] = append(members[k], r)
				return nil
			})
			return err
		})
	}
	if users == nil {
		users = []string{}
	}
	b.Queue(preferencesSQL, users, scopes, ids).Query(func(rows pgx.Rows) error {
		var r string
		var p event.Preferences
		_, err := pgx.ForEachRow(rows, []any{&r, &p.MutedTypes, &p.MutedOrganizers, &p.MutedMerchants}, func() error {
			cp := p
			prefs[r] = &cp
			p = event.Preferences{} // the next row gets slices of its own
			return nil
		})
		return err
	})
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, fmt.Errorf("resolve recipients: %w", err)
	}
	return members, prefs, nil
}

// Members returns the recipients of each group, ordered by recipient id.
func (t *Tx) Members(ctx context.Context, keys []event.ScopeKey) (map[event.ScopeKey][]string, error) {
	out := make(map[event.ScopeKey][]string, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	scopes, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		scopes[i], ids[i] = k.Scope, k.ID
	}
	rows, err := t.tx.Query(ctx, membersSQL, scopes, ids)
	if err != nil {
		return nil, fmt.Errorf("resolve members: %w", err)
	}
	var k event.ScopeKey
	var r string
	if _, err := pgx.ForEachRow(rows, []any{&k.Scope, &k.ID, &r}, func() error {
		out[k] = append(out[k], r)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("resolve members: %w", err)
	}
	return out, nil
}
