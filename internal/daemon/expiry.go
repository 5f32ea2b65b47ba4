package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/signal-notify/signal/internal/store"
)

// expireEvery is how often an instance sweeps the notifications whose
// expiresAt passed: an expired one leaves every device within this and a
// transaction of when it expired (issue 25 asks for 1 s). Every instance
// sweeps; the queue's row locks share the work (store.ExpireDue), and an
// empty sweep is one indexed read.
const expireEvery = 250 * time.Millisecond

// sweepExpired runs the expiry sweeper until ctx ends.
func sweepExpired(ctx context.Context, st *store.Store, stage store.Stager, log *slog.Logger) {
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := st.ExpireDue(ctx, stage)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			log.Warn("expiring notifications failed; retrying", "err", err)
		case err == nil && n > 0:
			log.Debug("expired notifications", "notifications", n)
		}
		failing = err != nil
	}
}
