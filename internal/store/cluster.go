package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// InstanceRow is one registered serve instance as status shows it.
type InstanceRow struct {
	ID       string
	HTTPAddr string
	Started  time.Time
	// Silent is how long ago its last heartbeat was.
	Silent  time.Duration
	Clients int
}

// ListInstances lists the registered instances, oldest first, with their
// client counts and how long each has been silent.
func (s *Store) ListInstances(ctx context.Context) ([]InstanceRow, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT i.id, i.http_addr, i.started_at, greatest(now() - i.heartbeat_at, '0'::interval),
		       (SELECT count(*) FROM ws_clients c WHERE c.instance_id = i.id)
		FROM instances i ORDER BY i.started_at, i.id`)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (InstanceRow, error) {
		var in InstanceRow
		err := r.Scan(&in.ID, &in.HTTPAddr, &in.Started, &in.Silent, &in.Clients)
		return in, err
	})
}

// SetConsumerMember records that the Kafka group member memberID is this
// instance, replacing the instance's previous member id and forgetting the
// members of instances that are gone.
func (s *Store) SetConsumerMember(ctx context.Context, instance, memberID string) error {
	_, err := s.Pool.Exec(ctx, `
		WITH old AS (DELETE FROM consumer_members
		             WHERE (instance_id = $1 AND member_id <> $2)
		                OR instance_id NOT IN (SELECT id FROM instances) AND instance_id <> $1)
		INSERT INTO consumer_members (member_id, instance_id) VALUES ($2, $1)
		ON CONFLICT (member_id) DO UPDATE SET instance_id = EXCLUDED.instance_id, updated_at = now()`, instance, memberID)
	if err != nil {
		return fmt.Errorf("record consumer member: %w", err)
	}
	return nil
}

// ConsumerMembers maps Kafka group member ids to instance ids.
func (s *Store) ConsumerMembers(ctx context.Context) (map[string]string, error) {
	rows, err := s.Pool.Query(ctx, `SELECT member_id, instance_id FROM consumer_members`)
	if err != nil {
		return nil, fmt.Errorf("consumer members: %w", err)
	}
	out := map[string]string{}
	var m, i string
	_, err = pgx.ForEachRow(rows, []any{&m, &i}, func() error {
		out[m] = i
		return nil
	})
	return out, err
}
