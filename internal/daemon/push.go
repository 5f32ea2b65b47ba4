package daemon

import (
	"context"
	"log/slog"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/hub"
	"github.com/signal-notify/signal/internal/store"
)

// Remote publishes deliveries to the other instances.
type Remote interface {
	PublishNotifications(ctx context.Context, items []hub.Delivery)
}

// pusher encodes each committed row's frame once and delivers it to this
// instance's clients, and to the other instances' through the relay.
type pusher struct {
	hub    *hub.Hub
	remote Remote // nil with one instance
	log    *slog.Logger
}

func (p *pusher) Push(ctx context.Context, rows []*event.Row) {
	items, err := hub.NotificationDeliveries(rows)
	if err != nil {
		p.log.Error("encode notification frames", "err", err)
	}
	p.hub.Deliver(items)
	if p.remote != nil {
		p.remote.PublishNotifications(ctx, items)
	}
}

// history serves WebSocket replay from the store.
type history struct {
	store *store.Store
}

func (h history) ReplayAfter(ctx context.Context, recipient string, since uuid.UUID, limit int) (hub.Replay, error) {
	rows, truncated, sinceSeq, err := h.store.ReplayAfter(ctx, recipient, since, limit)
	return hub.Replay{Rows: rows, Truncated: truncated, SinceSeq: sinceSeq}, err
}
