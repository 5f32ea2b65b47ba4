package daemon

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/ingest"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/tracing"
)

// The spans of traced records (internal/tracing): consume and persist at
// the Kafka batch (kafkaHandler below), push around the Pusher.

// recordTracer is the tracer of records: nil when tracing is off, so that
// no header is even looked at.
func recordTracer(t *tracing.Tracing) trace.Tracer {
	if !t.Enabled() {
		return nil
	}
	return t.Tracer()
}

// kafkaHeaders reads a record's headers as a propagation carrier.
type kafkaHeaders []kgo.RecordHeader

func (h kafkaHeaders) Get(key string) string {
	for _, x := range h {
		if x.Key == key {
			return string(x.Value)
		}
	}
	return ""
}

func (h kafkaHeaders) Set(string, string) {} // never written here
func (h kafkaHeaders) Keys() []string {
	keys := make([]string, len(h))
	for i, x := range h {
		keys[i] = x.Key
	}
	return keys
}

// tracedRecord is one traced record of a batch and its consume span.
type tracedRecord struct {
	key     tracing.Key
	consume trace.Span
}

// startConsume opens the consume span of each record of recs that carries
// a sampled traceparent.
func startConsume(tr trace.Tracer, recs []*kgo.Record) []tracedRecord {
	var out []tracedRecord
	for _, r := range recs {
		if len(r.Headers) == 0 {
			continue
		}
		ctx, sampled := tracing.Extract(context.Background(), kafkaHeaders(r.Headers))
		if !sampled {
			continue
		}
		_, span := tr.Start(ctx, "signal.consume", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", r.Topic),
			attribute.String("messaging.destination.partition.id", strconv.Itoa(int(r.Partition))),
			attribute.Int64("messaging.kafka.offset", r.Offset),
		))
		out = append(out, tracedRecord{key: tracing.Key{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}, consume: span})
	}
	return out
}

// startPersist opens one persist span per traced record, under its consume
// span, and returns ctx knowing them (for the pusher and the logs) and the
// function that ends them.
func startPersist(ctx context.Context, tr trace.Tracer, recs []tracedRecord) (context.Context, func(error)) {
	if len(recs) == 0 {
		return ctx, func(error) {}
	}
	spans := make(map[tracing.Key]trace.Span, len(recs))
	for _, r := range recs {
		_, span := tr.Start(trace.ContextWithSpan(ctx, r.consume), "signal.persist")
		spans[r.key] = span
	}
	return tracing.WithRecords(ctx, spans), func(err error) {
		for _, s := range spans {
			tracing.End(s, err)
		}
	}
}

// tracedPusher opens a push span for each traced record whose rows are
// staged, from Stage until the transaction settles. Everything else goes
// straight to the pusher it wraps.
type tracedPusher struct {
	ingest.Pusher
	tracer trace.Tracer
}

func (p tracedPusher) Stage(ctx context.Context, tx *store.Tx, rows []*event.Row) (func(bool), error) {
	recs := tracing.Records(ctx)
	if recs == nil {
		return p.Pusher.Stage(ctx, tx, rows)
	}
	perRecord := map[tracing.Key]int{}
	for _, r := range rows {
		if k := tracing.KeyOf(r.Source); recs[k] != nil {
			perRecord[k]++
		}
	}
	spans := make([]trace.Span, 0, len(perRecord))
	for k, n := range perRecord {
		_, span := p.tracer.Start(trace.ContextWithSpan(ctx, recs[k]), "signal.push",
			trace.WithAttributes(attribute.Int("signal.notifications", n)))
		spans = append(spans, span)
	}
	settle, err := p.Pusher.Stage(ctx, tx, rows)
	if err != nil {
		for _, s := range spans {
			tracing.End(s, err)
		}
		return settle, err
	}
	return func(committed bool) {
		settle(committed)
		for _, s := range spans {
			s.SetAttributes(attribute.Bool("signal.committed", committed))
			if !committed {
				tracing.End(s, errRolledBack)
				continue
			}
			s.End()
		}
	}, nil
}

var errRolledBack = rolledBack{}

type rolledBack struct{}

func (rolledBack) Error() string { return "transaction rolled back: nothing pushed" }
