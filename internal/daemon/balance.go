package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/signal-notify/signal/internal/balance"
	"github.com/signal-notify/signal/internal/hub"
	"github.com/signal-notify/signal/internal/store"
)

// rebalance hands clients back to the load balancer while this instance
// holds more than its share and another instance holds much less (after a
// rolling restart, the last one back starts empty): every interval it
// closes a few with 1012, spread over the interval (internal/balance).
func rebalance(ctx context.Context, st *store.Store, h *hub.Hub, instance string, interval time.Duration, log *slog.Logger) error {
	if interval <= 0 {
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		list, err := st.ListInstances(ctx)
		if err != nil {
			continue // the database is away: try next round
		}
		counts := make(map[string]int, len(list))
		for _, in := range list {
			counts[in.ID] = in.Clients
		}
		if n := balance.Shed(counts, instance, balance.Options{}); n > 0 {
			shed := h.Shed(n, interval)
			log.Info("rebalancing: clients asked to reconnect elsewhere", "clients", shed, "counts", counts)
		}
	}
}
