package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
)

// Revocation (members.revoke_on_remove): a member removed from an
// organizer or a merchant — through the API, the members topic or the
// CLI, by remove or replace — loses the notifications of that scope
// (organizer_id, or merchant_id, equal to the group's id), in the
// transaction that removes it, as removed changes (reason revoked) of its
// stream. Off by default: a notification is a record of what happened
// while one was a member, and deleting history is a product decision.

// revokeBatch is how many removed members one statement looks up.
const revokeBatch = 500

// RevokeOnRemove turns revocation on, its changes staged with stage.
// Call it before the store is used.
func (s *Store) RevokeOnRemove(stage Stager) { s.revoke = stage }

// revoking reports whether member removals revoke notifications.
func (t *Tx) revoking() bool { return t.st != nil && t.st.revoke != nil }

// revokeRemoved removes the notifications of key's scope from the members
// removed, in recipient order (the order state rows are locked in), and
// stages the changes; their settles run when the transaction ends.
func (t *Tx) revokeRemoved(ctx context.Context, key event.ScopeKey, removed []string) error {
	if !t.revoking() || len(removed) == 0 {
		return nil
	}
	col := "organizer_id"
	if key.Scope == event.ScopeMerchant {
		col = "merchant_id"
	}
	slices.Sort(removed)
	removed = slices.Compact(removed)
	_, _, _, deleted := stateSQL("n.recipient_id")
	for len(removed) > 0 {
		batch := removed[:min(revokeBatch, len(removed))]
		removed = removed[len(batch):]
		rows, err := t.tx.Query(ctx, `SELECT n.id, n.recipient_id FROM notifications n LEFT JOIN notification_marks m ON m.id = n.id
			WHERE n.recipient_id = ANY($1) AND n.`+col+` = $2 AND NOT `+deleted+` ORDER BY n.recipient_id, n.seq`, batch, key.ID)
		if err != nil {
			return fmt.Errorf("revoke notifications: %w", err)
		}
		targets, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (target, error) {
			var tg target
			return tg, r.Scan(&tg.id, &tg.recipient)
		})
		if err != nil {
			return fmt.Errorf("revoke notifications: %w", err)
		}
		if err := t.revokeTargets(ctx, targets); err != nil {
			return err
		}
	}
	return nil
}

// revokeTargets removes targets, MaxRemovePerTx at a time, and stages
// the changes.
func (t *Tx) revokeTargets(ctx context.Context, targets []target) error {
	for len(targets) > 0 {
		part := targets[:min(MaxRemovePerTx, len(targets))]
		targets = targets[len(part):]
		pushes, err := t.removeRows(ctx, part, event.RemovedRevoked)
		if err != nil {
			return err
		}
		settle, err := stageChanges(ctx, t.st.revoke, t, pushes)
		if err != nil {
			return err
		}
		t.after = append(t.after, settle)
	}
	return nil
}
