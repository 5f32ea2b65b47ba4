package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/signal-notify/signal/internal/store"
)

// maintainEvery is how often an instance tries to maintain the partitions
// of notifications (only one instance at a time does: store.Maintain).
const maintainEvery = time.Hour

// maintain keeps the day partitions of notifications ahead of time and
// removes those past the retention, now and then every maintainEvery, until
// ctx ends. It never runs inside ingest.
func maintain(ctx context.Context, st *store.Store, retention time.Duration, log *slog.Logger) {
	for {
		res, err := st.Maintain(ctx, time.Now(), retention)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("partition maintenance failed; retrying at the next run", "err", err, "next", maintainEvery.String())
		case res.Skipped:
			log.Debug("partition maintenance skipped: another instance runs it")
		case len(res.Strays) > 0:
			log.Warn("partition maintenance removed partitions too far ahead of today (made for records with timestamps in the future)",
				"strays", res.Strays, "rows", res.StrayRows, "created", res.Created, "dropped", res.Dropped)
		case len(res.Created) > 0 || len(res.Dropped) > 0 || res.Deleted > 0:
			log.Info("partition maintenance", "created", res.Created, "dropped", res.Dropped,
				"legacyRowsDeleted", res.Deleted, "marksDeleted", res.Marks)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(maintainEvery):
		}
	}
}
