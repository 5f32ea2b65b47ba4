package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Options configure Start.
type Options struct {
	Endpoint string // OTLP/HTTP base URL; "" disables tracing
	Version  string // service.version
	Instance string // service.instance.id
	Logger   *slog.Logger
}

// Tracing is the tracer of one serve instance.
type Tracing struct {
	tracer trace.Tracer
	sdk    *sdktrace.TracerProvider // nil when off
}

// Off is a Tracing that records nothing.
func Off() *Tracing { return &Tracing{tracer: noop.NewTracerProvider().Tracer("")} }

// Start sets up the exporter; nothing is sent before the first span ends.
func Start(o Options) (*Tracing, error) {
	if o.Endpoint == "" {
		return Off(), nil
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(joinPath(o.Endpoint, "/v1/traces")))
	if err != nil {
		return nil, fmt.Errorf("otel.endpoint: %w", err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "signal"),
		attribute.String("service.version", o.Version),
		attribute.String("service.instance.id", o.Instance),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		// Continue sampled traces; never start one.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())),
	)
	if o.Logger != nil {
		o.Logger.Info("tracing: spans of traced records and requests go to otel.endpoint", "endpoint", o.Endpoint)
	}
	return &Tracing{tracer: tp.Tracer("github.com/signal-notify/signal"), sdk: tp}, nil
}

func joinPath(base, path string) string {
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + path
}

// Enabled reports whether spans are exported.
func (t *Tracing) Enabled() bool { return t != nil && t.sdk != nil }

// Tracer starts spans (a no-op one when off).
func (t *Tracing) Tracer() trace.Tracer { return t.tracer }

// Shutdown exports what is left, within timeout.
func (t *Tracing) Shutdown(timeout time.Duration) error {
	if !t.Enabled() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := t.sdk.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("tracing: export the last spans: %w", err)
	}
	return nil
}

var propagator = propagation.TraceContext{}

// Extract returns ctx continuing the trace of a W3C traceparent (and
// tracestate) read through carrier, and whether that trace is sampled:
// only then is there anything to record.
func Extract(ctx context.Context, carrier propagation.TextMapCarrier) (context.Context, bool) {
	ctx = propagator.Extract(ctx, carrier)
	return ctx, trace.SpanContextFromContext(ctx).IsSampled()
}

// Inject writes ctx's trace into carrier (a producer, a test).
func Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	propagator.Inject(ctx, carrier)
}

// End ends span with err's status.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
