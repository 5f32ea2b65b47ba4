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

// pusher encodes each committed row's frame once and hands it to the
// relay, which delivers it here and on the other instances in seq order.
type pusher struct {
	relay *relay.Relay
}

func (p *pusher) Stage(ctx context.Context, tx *store.Tx, rows []*event.Row) (func(bool), error) {
	items, err := hub.NotificationDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("encode notification frames: %w", err)
	}
	return p.relay.Stage(ctx, tx, items)
}

// history serves WebSocket replay from the store.
type history struct {
	store *store.Store
}

func (h history) ReplayAfter(ctx context.Context, recipient string, since uuid.UUID, limit int, below int64) (hub.Replay, error) {
	rows, truncated, sinceSeq, err := h.store.ReplayAfter(ctx, recipient, since, limit, below)
	return hub.Replay{Rows: rows, Truncated: truncated, SinceSeq: sinceSeq}, err
}
