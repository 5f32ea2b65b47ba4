package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// RelayChannel is the LISTEN/NOTIFY channel instances relay frames on.
const RelayChannel = "signal_relay"

// ClientRow is one connected WebSocket client as other instances see it.
type ClientRow struct {
	ID          string    `json:"id"`
	InstanceID  string    `json:"instance"`
	Subject     string    `json:"subject"`
	Rooms       []string  `json:"rooms"`
	ConnectedAt time.Time `json:"connectedSince"`
}

// PresenceChange is a batch of changes one instance reports at once.
type PresenceChange struct {
	Upsert      []ClientRow
	Delete      []string // client ids
	RoomsOpened []string
	RoomsClosed []string
}

// Empty reports whether there is nothing to write.
func (p *PresenceChange) Empty() bool {
	return len(p.Upsert)+len(p.Delete)+len(p.RoomsOpened)+len(p.RoomsClosed) == 0
}

// RegisterInstance records a starting instance (or refreshes it).
func (s *Store) RegisterInstance(ctx context.Context, id, httpAddr string) error {
	_, err := s.Pool.Exec(ctx, `
		INSERT INTO instances (id, http_addr) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET http_addr = EXCLUDED.http_addr, heartbeat_at = now()`, id, httpAddr)
	if err != nil {
		return fmt.Errorf("register instance: %w", err)
	}
	return nil
}

// Heartbeat marks the instance alive, removes instances silent for longer
// than timeout together with their clients and rooms, and returns how many
// other instances are alive. rejoined is true when the instance's own row
// was gone: another instance swept it as dead (its heartbeat came late), so
// its clients and rooms are gone too and must be stated again.
func (s *Store) Heartbeat(ctx context.Context, id, httpAddr string, timeout time.Duration) (peers int, rejoined bool, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		// xmax = 0: the row was inserted, not updated.
		if err := tx.tx.QueryRow(ctx, `
			INSERT INTO instances (id, http_addr) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
			RETURNING xmax = 0`, id, httpAddr).Scan(&rejoined); err != nil {
			return err
		}
		if _, err := tx.tx.Exec(ctx, `
			WITH dead AS (DELETE FROM instances WHERE heartbeat_at < now() - $1::interval RETURNING id),
			     c AS (DELETE FROM ws_clients WHERE instance_id IN (SELECT id FROM dead))
			DELETE FROM ws_rooms WHERE instance_id IN (SELECT id FROM dead)`, timeout); err != nil {
			return err
		}
		// Rows of instances that are gone without ever being swept (a
		// database restored from a backup, say).
		if _, err := tx.tx.Exec(ctx, `
			DELETE FROM ws_clients c WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = c.instance_id)`); err != nil {
			return err
		}
		return tx.tx.QueryRow(ctx, `SELECT count(*) FROM instances WHERE id <> $1`, id).Scan(&peers)
	})
	if err != nil {
		return 0, false, fmt.Errorf("heartbeat: %w", err)
	}
	return peers, rejoined, nil
}

// UnregisterInstance removes an instance that stops, with its clients and rooms.
func (s *Store) UnregisterInstance(ctx context.Context, id string) error {
	_, err := s.Pool.Exec(ctx, `
		WITH i AS (DELETE FROM instances WHERE id = $1),
		     c AS (DELETE FROM ws_clients WHERE instance_id = $1)
		DELETE FROM ws_rooms WHERE instance_id = $1`, id)
	if err != nil {
		return fmt.Errorf("unregister instance: %w", err)
	}
	return nil
}

// ApplyPresence writes an instance's client and room changes in one
// transaction. With replace, everything the instance had is dropped first
// (a full resynchronisation after the database came back).
func (s *Store) ApplyPresence(ctx context.Context, instance string, ch PresenceChange, replace bool) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if replace {
			if _, err := tx.tx.Exec(ctx, `DELETE FROM ws_clients WHERE instance_id = $1`, instance); err != nil {
				return fmt.Errorf("presence: %w", err)
			}
			if _, err := tx.tx.Exec(ctx, `DELETE FROM ws_rooms WHERE instance_id = $1`, instance); err != nil {
				return fmt.Errorf("presence: %w", err)
			}
		}
		if len(ch.Delete) > 0 {
			if _, err := tx.tx.Exec(ctx, `DELETE FROM ws_clients WHERE client_id = ANY($1)`, ch.Delete); err != nil {
				return fmt.Errorf("presence: %w", err)
			}
		}
		if len(ch.Upsert) > 0 {
			ids, subs, rooms, since := make([]string, len(ch.Upsert)), make([]string, len(ch.Upsert)), make([]string, len(ch.Upsert)), make([]time.Time, len(ch.Upsert))
			for i, c := range ch.Upsert {
				ids[i], subs[i], since[i] = c.ID, c.Subject, c.ConnectedAt
				rooms[i] = pgTextArray(c.Rooms)
			}
			if _, err := tx.tx.Exec(ctx, `
				INSERT INTO ws_clients (client_id, instance_id, subject, rooms, connected_at)
				SELECT id, $1, sub, r::text[], t FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS u(id, sub, r, t)
				ON CONFLICT (client_id) DO UPDATE SET rooms = EXCLUDED.rooms, instance_id = EXCLUDED.instance_id`,
				instance, ids, subs, rooms, since); err != nil {
				return fmt.Errorf("presence: %w", err)
			}
		}
		if len(ch.RoomsClosed) > 0 {
			if _, err := tx.tx.Exec(ctx, `DELETE FROM ws_rooms WHERE instance_id = $1 AND room = ANY($2)`, instance, ch.RoomsClosed); err != nil {
				return fmt.Errorf("presence: %w", err)
			}
		}
		if len(ch.RoomsOpened) > 0 {
			if _, err := tx.tx.Exec(ctx, `
				INSERT INTO ws_rooms (room, instance_id) SELECT r, $1 FROM unnest($2::text[]) r
				ON CONFLICT DO NOTHING`, instance, ch.RoomsOpened); err != nil {
				return fmt.Errorf("presence: %w", err)
			}
		}
		return nil
	})
}

// pgTextArray writes a text[] literal; rooms may hold any character.
func pgTextArray(items []string) string {
	b := make([]byte, 0, 16*len(items)+2)
	b = append(b, '{')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(it); j++ {
			if it[j] == '"' || it[j] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, it[j])
		}
		b = append(b, '"')
	}
	return string(append(b, '}'))
}

// RemoteRooms returns which of rooms have members on other live instances.
func (s *Store) RemoteRooms(ctx context.Context, instance string, rooms []string) ([]string, error) {
	return remoteRooms(ctx, s.Pool, instance, rooms)
}

// ClientInstance returns the instance a client is connected to.
func (s *Store) ClientInstance(ctx context.Context, clientID string) (string, error) {
	var inst string
	err := s.Pool.QueryRow(ctx, `SELECT instance_id FROM ws_clients WHERE client_id = $1`, clientID).Scan(&inst)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("find client: %w", err)
	}
	return inst, nil
}

// ListClients lists every connected client of every live instance.
func (s *Store) ListClients(ctx context.Context) ([]ClientRow, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT client_id, instance_id, subject, rooms, connected_at FROM ws_clients ORDER BY connected_at, client_id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ClientRow, error) {
		var c ClientRow
		err := r.Scan(&c.ID, &c.InstanceID, &c.Subject, &c.Rooms, &c.ConnectedAt)
		return c, err
	})
}

// Notify sends payloads on channel in one transaction: listeners receive
// them together and in this order.
func (s *Store) Notify(ctx context.Context, channel string, payloads []string) error {
	if len(payloads) == 0 {
		return nil
	}
	_, err := s.Pool.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS u(p, n) ORDER BY n`, channel, payloads)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// SpillPayload stores a relay message too large for NOTIFY.
func (s *Store) SpillPayload(ctx context.Context, payload []byte) (int64, error) {
	var id int64
	if err := s.Pool.QueryRow(ctx, `INSERT INTO relay_payloads (payload) VALUES ($1) RETURNING id`, payload).Scan(&id); err != nil {
		return 0, fmt.Errorf("store relay payload: %w", err)
	}
	return id, nil
}

// LoadPayload reads a spilled relay message.
func (s *Store) LoadPayload(ctx context.Context, id int64) ([]byte, error) {
	var b []byte
	err := s.Pool.QueryRow(ctx, `SELECT payload FROM relay_payloads WHERE id = $1`, id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load relay payload: %w", err)
	}
	return b, nil
}

// PurgePayloads removes spilled relay messages older than age.
func (s *Store) PurgePayloads(ctx context.Context, age time.Duration) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM relay_payloads WHERE created_at < now() - $1::interval`, age)
	return err
}

// Listen opens a dedicated connection LISTENing on channel.
func (s *Store) Listen(ctx context.Context, channel string) (*pgx.Conn, error) {
	c, err := s.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	conn := c.Hijack()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("listen: %w", err)
	}
	return conn, nil
}

// CountInstances counts the registered (live or not yet swept) instances.
func (s *Store) CountInstances(ctx context.Context) (int, error) {
	var n int
	err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM instances`).Scan(&n)
	return n, err
}
