package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/httpapi"
	"github.com/signal-notify/signal/internal/kafka"
	"github.com/signal-notify/signal/internal/relay"
	"github.com/signal-notify/signal/internal/store"
)

// statusSource fills GET /status: the consumer group's lag per partition
// (all instances together) and which instance owns each, dead letters
// waiting, the instances registered and how long each has been silent.
func statusSource(instance, version string, cfg *config.Config, started time.Time, consumer *kafka.Consumer, st *store.Store, rel *relay.Relay) httpapi.StatusSource {
	adm := kadm.NewClient(consumer.Client())
	topic, group := cfg.Kafka.Topic, cfg.Kafka.GroupID
	return func(ctx context.Context) httpapi.Status {
		s := httpapi.Status{Instance: instance, Version: version, StartedAt: started.UTC(), Cluster: []httpapi.InstanceStatus{}}
		s.Consumer.Topic, s.Consumer.Group = topic, group
		_, s.Consumer.PartitionsOwned = consumer.Joined()
		s.Consumer.Lag = []httpapi.PartitionLag{}
		members, _ := st.ConsumerMembers(ctx)
		owned := map[string][]int32{} // instance → partitions
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
						pl.Instance = members[m.Member.MemberID]
						owned[pl.Instance] = append(owned[pl.Instance], m.Partition)
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
		list, err := st.ListInstances(ctx)
		if err == nil {
			for _, in := range list {
				is := httpapi.InstanceStatus{ID: in.ID, HTTPAddr: in.HTTPAddr, StartedAt: in.Started.UTC(), Self: in.ID == instance,
					Clients: in.Clients, Partitions: owned[in.ID], SilentSeconds: in.Silent.Seconds()}
				if is.Partitions == nil {
					is.Partitions = []int32{}
				}
				if !is.Self && in.Silent > 2*cfg.Cluster.Heartbeat {
					is.Stale = true
					is.Note = staleNote(in.Silent, len(is.Partitions), cfg)
				}
				s.Cluster = append(s.Cluster, is)
			}
		}
		s.Instances = len(s.Cluster)
		return s
	}
}

// staleNote says what happens to an instance that stopped without a clean
// stop (killed, frozen, cut off) while the others wait for it.
func staleNote(silent time.Duration, partitions int, cfg *config.Config) string {
	note := fmt.Sprintf("no heartbeat for %s: its clients are counted until it has been silent for %s (cluster.dead_after), then removed",
		silent.Round(time.Second), cfg.Cluster.DeadAfter)
	if partitions > 0 {
		note += fmt.Sprintf("; its %d partition(s) make no progress until the consumer group gives them to another instance (after kafka.session_timeout, %s)",
			partitions, cfg.Kafka.SessionTimeout)
	}
	return note
}

// trackMember records which consumer-group member this instance is, each
// time it (re)joins the group and every 30 s (the table is UNLOGGED), so
// status can name the instance that owns a partition.
func trackMember(ctx context.Context, cl *kgo.Client, st *store.Store, instance string, log *slog.Logger) {
	var last string
	var written time.Time
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if member, _ := cl.GroupMetadata(); member != "" && (member != last || time.Since(written) > 30*time.Second) {
			if err := st.SetConsumerMember(ctx, instance, member); err != nil {
				log.Debug("record consumer member", "err", err)
			} else {
				last, written = member, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
