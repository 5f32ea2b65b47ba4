package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/kafka"
)

// broker is an in-process Kafka-protocol broker (kfake) with the topic.
func startBroker(e *env, topics ...string) (string, error) {
	emb, err := kafka.StartEmbedded(0, topics...)
	if err != nil {
		return "", err
	}
	e.onClose(emb.Close)
	return emb.Addr, nil
}

// message is a TActivityNotificationMessage of the size production sends:
// two recipients, a payment with an id, subject and amount. sentNs, when
// not zero, is put in data so clients can compute the delivery latency.
func message(i int, recipients [2]string, sentNs int64) []byte {
	b := make([]byte, 0, 420)
	b = append(b, `{"eventType":"PAYMENT_SUCCESS","recipientScope":"users","actorId":"a`...)
	b = strconv.AppendInt(b, int64(i%500), 10)
	b = append(b, `","actor":{"id":"a`...)
	b = strconv.AppendInt(b, int64(i%500), 10)
	b = append(b, `","name":"Alice Martin","type":"user"},"organizerId":"`...)
	b = append(b, organizer(i)...)
	b = append(b, `","recipientIds":["`...)
	b = append(b, recipients[0]...)
	b = append(b, `","`...)
	b = append(b, recipients[1]...)
	b = append(b, `"],"data":{"payment":{"id":"p-`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","subject":"Gold ticket `...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","amount":"125.00","currency":"EUR"}`...)
	if sentNs != 0 {
		b = append(b, `,"sentNs":`...)
		b = strconv.AppendInt(b, sentNs, 10)
	}
	b = append(b, `},"occurredAt":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `"}`...)
	return b
}

// organizer is the record key: a hundred organizers spread the records
// over the partitions, as production keys do.
func organizer(i int) string { return "org-" + strconv.Itoa(i%100) }

// producedRecord is where a pre-produced message landed.
type producedRecord struct {
	Value     []byte
	Partition int32
	Offset    int64
	Timestamp time.Time
	topic     string // "": the notification topic
}

func (r producedRecord) topicName() string {
	if r.topic == "" {
		return topic
	}
	return r.topic
}

// preProduce sends n messages with two distinct recipients each, among
// users u0…u(users-1), as fast as the broker takes them.
func preProduce(ctx context.Context, broker string, n, users int) ([]producedRecord, error) {
	return preProduceTopic(ctx, broker, topic, n, users)
}

// preProduceTopic is preProduce to another topic.
func preProduceTopic(ctx context.Context, broker, topic string, n, users int) ([]producedRecord, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(2*time.Millisecond), kgo.MaxBufferedRecords(20000), kgo.RecordDeliveryTimeout(60*time.Second))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := make([]producedRecord, n)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			break
		}
		a := (i * 7919) % users
		b := (a + 1 + i%(users-1)) % users
		v := message(i, [2]string{"u" + strconv.Itoa(a), "u" + strconv.Itoa(b)}, 0)
		idx := i
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Key: []byte(organizer(i)), Value: v}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			out[idx] = producedRecord{Value: r.Value, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	return out, ctx.Err()
}

// pacedProducer sends messages at a steady rate, each carrying the time
// it was handed to the client (data.sentNs).
type pacedProducer struct {
	cl *kgo.Client
}

func newPacedProducer(broker string) (*pacedProducer, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(0), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		return nil, err
	}
	return &pacedProducer{cl: cl}, nil
}

func (p *pacedProducer) close() { p.cl.Close() }

// run produces at rate messages/s for d; recipients(i) picks the two
// recipients of message i. It returns how many were sent, how many of
// them at or after cutoff (Unix ns), and the first produce error.
func (p *pacedProducer) run(ctx context.Context, rate float64, d time.Duration, cutoff int64, recipients func(i int) [2]string) (int, int, error) {
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	total := int(rate * d.Seconds())
	sent, counted := 0, 0
	for sent < total && ctx.Err() == nil {
		due := min(total, int(time.Since(start).Seconds()*rate)+1)
		for ; sent < due; sent++ {
			now := time.Now().UnixNano()
			if now >= cutoff {
				counted++
			}
			v := message(sent, recipients(sent), now)
			wg.Add(1)
			p.cl.Produce(ctx, &kgo.Record{Key: []byte(organizer(sent)), Value: v}, func(_ *kgo.Record, err error) {
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
				wg.Done()
			})
		}
		time.Sleep(500 * time.Microsecond)
	}
	wg.Wait()
	err, _ := firstErr.Load().(error)
	return sent, counted, err
}
