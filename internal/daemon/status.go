package daemon

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/signal-notify/signal/internal/httpapi"
	"github.com/signal-notify/signal/internal/kafka"
	"github.com/signal-notify/signal/internal/store"
)

// statusSource fills GET /status: the consumer group's lag per partition
// (all instances together), dead letters waiting, instances alive.
func statusSource(instance, version, topic, group string, started time.Time, consumer *kafka.Consumer, st *store.Store) httpapi.StatusSource {
	adm := kadm.NewClient(consumer.Client())
	return func(ctx context.Context) httpapi.Status {
		s := httpapi.Status{Instance: instance, Version: version, StartedAt: started.UTC()}
		s.Consumer.Topic, s.Consumer.Group = topic, group
		_, s.Consumer.PartitionsOwned = consumer.Joined()
		s.Consumer.Lag = []httpapi.PartitionLag{}
		lags, err := adm.Lag(ctx, group)
		if err == nil {
			if l, ok := lags[group]; ok && l.Error() == nil {
				for _, m := range l.Lag.Sorted() {
					if m.Topic != topic {
						continue
					}
					pl := httpapi.PartitionLag{Partition: m.Partition, Committed: m.Commit.At, End: m.End.Offset, Lag: m.Lag}
					if m.Member != nil {
						pl.Member = m.Member.ClientID + " " + m.Member.ClientHost
					}
					if pl.Lag > 0 {
						s.Consumer.TotalLag += pl.Lag
					}
					s.Consumer.Lag = append(s.Consumer.Lag, pl)
				}
			} else if ok {
				err = l.Error()
			}
		}
		if err != nil {
			s.Consumer.Error = err.Error()
		}
		if dl, err := st.PendingDeadLetters(ctx); err == nil {
			s.DeadLetters = dl
		}
		s.Instances, _ = st.CountInstances(ctx)
		return s
	}
}
