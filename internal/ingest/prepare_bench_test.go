package ingest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/ingest"
)

// BenchmarkPrepare measures the CPU work done per message before the
// database: decode, validate, render, derive ids and keys.
func BenchmarkPrepare(b *testing.B) {
	renderer, err := event.NewRenderer(nil)
	if err != nil {
		b.Fatal(err)
	}
	in := ingest.New(ingest.Options{Renderer: renderer})
	const n = 1000
	records := make([]ingest.Record, n)
	ts := time.Now()
	for i := range records {
		records[i] = ingest.Record{
			Source: event.Source{Topic: "signal.activity-notification", Partition: int32(i % 4), Offset: int64(i), Timestamp: ts},
			Value: []byte(fmt.Sprintf(`{"eventType":"PAYMENT_SUCCESS","recipientScope":"users","actorId":"a1","actor":{"id":"a1","name":"Alice","type":"user"},`+
				`"organizerId":"org-1","recipientIds":["r%d","r%d"],"data":{"i":%d,"payment":{"id":"p-1","subject":"Ticket"}},"occurredAt":"2026-11-27T09:00:00.123Z"}`, i%100, 100+i%100, i)),
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in.Prepare(records)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
}
