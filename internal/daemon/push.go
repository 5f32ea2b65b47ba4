package daemon

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/hub"
	"github.com/signal-notify/signal/internal/relay"
	"github.com/signal-notify/signal/internal/store"
)

// pusher makes each stored row reach its recipient's room: the frame is
// built only for rooms with a member, here or on another instance, and
// handed to the relay (remote rooms, inside the transaction) and to the hub
// (this instance's, once it committed).
type pusher struct {
	relay    *relay.Relay
	hub      *hub.Hub
	instance string
}

func (p *pusher) Stage(ctx context.Context, tx *store.Tx, rows []*event.Row) (func(bool), error) {
	seen := map[string]bool{}
	var rooms []string
	for _, r := range rows {
		if room := r.Room(); !seen[room] {
			seen[room] = true
			rooms = append(rooms, room)
		}
	}
	// After the rows took their positions (store/stream.go): an instance
	// whose client registered before this look is found here.
	remote, err := tx.RemoteRooms(ctx, p.instance, rooms)
	if err != nil {
		return nil, fmt.Errorf("look up remote rooms: %w", err)
	}
	wanted := make(map[string]bool, len(remote))
	for _, room := range remote {
		wanted[room] = true
	}
	items := event.RowPushes(rows, func(room string) bool { return wanted[room] || p.hub.HasRoom(room) })
	return p.relay.StageFor(ctx, tx, items, remote)
}

// streamSource reads streams back from the store for catch-ups.
type streamSource struct {
	store *store.Store
}

func (s streamSource) After(ctx context.Context, recipient string, pos int64, limit int) (event.StreamPage, error) {
	return s.store.StreamAfter(ctx, recipient, pos, limit)
}

// inbox is the store's inbox with the relay's stager: every state change
// reaches the recipient's devices as the next change of its stream.
type inbox struct {
	*store.Store
	stage store.Stager
}

func (i inbox) Mark(ctx context.Context, recipient string, op event.Op, ids []uuid.UUID) (event.Change, error) {
	return i.Store.Mark(ctx, recipient, op, ids, i.stage)
}

func (i inbox) MarkAll(ctx context.Context, recipient string, op event.Op) (event.Change, error) {
	return i.Store.MarkAll(ctx, recipient, op, i.stage)
}

// stager adapts a relay's Stage to the store's Stager.
func stager(stage func(context.Context, *store.Tx, []hub.Delivery) (func(bool), error)) store.Stager {
	return func(ctx context.Context, tx *store.Tx, pushes []event.Push) (func(bool), error) {
		return stage(ctx, tx, pushes)
	}
}
