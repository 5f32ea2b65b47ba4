package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/httpapi"
	"github.com/signal-notify/signal/internal/ingest"
	"github.com/signal-notify/signal/internal/kafka"
	"github.com/signal-notify/signal/internal/metrics"
	"github.com/signal-notify/signal/internal/store"
)

// MembersGroupSuffix makes the consumer group of members.topic from
// kafka.group_id: a group of its own, so its offsets and rebalances are
// apart from the notification topic's.
const MembersGroupSuffix = "-members"

// newMemberFeed returns the consumer of members.topic and its readiness
// check, or nil when no topic is configured. It starts at the earliest
// offset when its group has none: the topic is the history of who belongs
// where (ideally compacted, with replace records), and skipping it would
// leave groups empty.
func newMemberFeed(cfg *config.Config, clientOpts []kgo.Opt, st *store.Store, m *metrics.Metrics, log *slog.Logger) (*kafka.Consumer, []httpapi.Check, error) {
	if cfg.Members.Topic == "" {
		return nil, nil, nil
	}
	feed := ingest.NewMemberFeed(st, m, log.With("component", "members"))
	c, err := kafka.NewConsumer(kafka.ConsumerOptions{
		Client: clientOpts, Topic: cfg.Members.Topic, Group: cfg.Kafka.GroupID + MembersGroupSuffix,
		ResetOffset: "earliest", BatchSize: cfg.Kafka.BatchSize, SessionTimeout: cfg.Kafka.SessionTimeout,
		RetryMin: cfg.Ingest.RetryMin, RetryMax: cfg.Ingest.RetryMax,
		Handler: memberHandler{feed}, Metrics: m, Logger: log.With("component", "members-consumer"),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("members.topic consumer: %w", err)
	}
	check := httpapi.Check{Name: "members", Check: c.Ready}
	return c, []httpapi.Check{check}, nil
}

// memberHandler adapts franz-go records of members.topic to the feed.
type memberHandler struct {
	feed *ingest.MemberFeed
}

func (h memberHandler) Prepare(recs []*kgo.Record) kafka.Batch {
	return memberBatch{h.feed, h.feed.Prepare(ingestRecords(recs))}
}

type memberBatch struct {
	feed *ingest.MemberFeed
	p    *ingest.PreparedChanges
}

func (b memberBatch) Persist(ctx context.Context) error {
	_, err := b.feed.Persist(ctx, b.p)
	return err
}

func (memberBatch) Publish(context.Context) {}

// embeddedTopics are the topics the embedded broker creates.
func embeddedTopics(cfg *config.Config) []string {
	if cfg.Members.Topic != "" {
		return []string{cfg.Kafka.Topic, cfg.Members.Topic}
	}
	return []string{cfg.Kafka.Topic}
}

// ingestRecords converts polled records, headers included.
func ingestRecords(recs []*kgo.Record) []ingest.Record {
	records := make([]ingest.Record, len(recs))
	for i, r := range recs {
		records[i] = ingest.Record{
			Source: event.Source{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp},
			Key:    r.Key, Value: r.Value,
		}
		for _, h := range r.Headers {
			records[i].Headers = append(records[i].Headers, event.Header{Key: h.Key, Value: h.Value})
		}
	}
	return records
}
