package tracing

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/signal-notify/signal/internal/event"
)

// Key names one record (its Source without the timestamp).
type Key struct {
	Topic     string
	Partition int32
	Offset    int64
}

// KeyOf is the Key of src.
func KeyOf(src event.Source) Key { return Key{src.Topic, src.Partition, src.Offset} }

type recordsKey struct{}

// WithRecords returns ctx knowing the current span of each traced record
// of a batch, so that what handles the batch (the pusher, the logs of one
// record) continues the right trace. spans empty: ctx unchanged.
func WithRecords(ctx context.Context, spans map[Key]trace.Span) context.Context {
	if len(spans) == 0 {
		return ctx
	}
	return context.WithValue(ctx, recordsKey{}, spans)
}

// Records returns what WithRecords put in ctx (nil: no traced record).
func Records(ctx context.Context) map[Key]trace.Span {
	m, _ := ctx.Value(recordsKey{}).(map[Key]trace.Span)
	return m
}

// ForRecord returns ctx with src's span as the current one when src is a
// traced record of ctx's batch (its log lines then carry its trace id),
// else ctx.
func ForRecord(ctx context.Context, src event.Source) context.Context {
	if s, ok := Records(ctx)[KeyOf(src)]; ok {
		return trace.ContextWithSpan(ctx, s)
	}
	return ctx
}
