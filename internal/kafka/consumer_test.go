package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/metrics"
)

const (
	testTopic = "signal.activity-notification"
	testGroup = "consumer-test"
)

// recorder is a Handler that notes every record it persisted (by
// partition and offset), and can hold or fail Persist on demand.
type recorder struct {
	mu        sync.Mutex
	persisted map[string]int // "partition/offset" → times persisted
	order     []string
	hold      chan struct{} // while open, Persist waits (closed: go on)
	failures  int           // Persist fails this many times first
	attempts  int
	entered   chan struct{} // receives once per Persist call (non-blocking)
}

func newRecorder() *recorder {
	h := &recorder{persisted: map[string]int{}, entered: make(chan struct{}, 1000)}
	h.hold = make(chan struct{})
	close(h.hold)
	return h
}

// holdPersist makes Persist wait until the returned func is called.
func (h *recorder) holdPersist() (release func()) {
	ch := make(chan struct{})
	h.mu.Lock()
	h.hold = ch
	h.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (h *recorder) Prepare(recs []*kgo.Record) Batch { return &recBatch{h: h, recs: recs} }

func (h *recorder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.persisted)
}

type recBatch struct {
	h    *recorder
	recs []*kgo.Record
}

func (b *recBatch) Persist(ctx context.Context) error {
	h := b.h
	select {
	case h.entered <- struct{}{}:
	default:
	}
	h.mu.Lock()
	hold := h.hold
	h.attempts++
	fail := h.failures > 0
	if fail {
		h.failures--
	}
	h.mu.Unlock()
	select {
	case <-hold:
	case <-ctx.Done():
		return ctx.Err()
	}
	if fail {
		return errors.New("database away")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range b.recs {
		k := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
		h.persisted[k]++
		h.order = append(h.order, k)
	}
	return nil
}

func (b *recBatch) Publish(context.Context) {}

func broker(t *testing.T) string {
	t.Helper()
	emb, err := StartEmbedded(0, testTopic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	return emb.Addr
}

// running is a consumer running in the background.
type running struct {
	c      *Consumer
	m      *metrics.Metrics
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, addr string, h Handler, edit func(*ConsumerOptions)) *running {
	t.Helper()
	m := metrics.New()
	o := ConsumerOptions{
		Client: []kgo.Opt{kgo.SeedBrokers(addr)}, Topic: testTopic, Group: testGroup, ResetOffset: "earliest",
		SessionTimeout: time.Second, BatchSize: 50, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		LagInterval: 100 * time.Millisecond, Handler: h, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&o)
	}
	c, err := NewConsumer(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, m: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		r.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer did not stop within 30s")
	}
}

func (r *running) owned() int { _, n := r.c.Joined(); return n }

func produce(t *testing.T, addr string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(testTopic), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte("k" + strconv.Itoa(i%16)), Value: []byte(strconv.Itoa(i))}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// offsets returns the group's committed offsets and the topic's ends, by
// partition.
func offsets(t *testing.T, addr string) (committed, ends map[int32]int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	c, err := adm.FetchOffsets(ctx, testGroup)
	if err != nil {
		t.Fatal(err)
	}
	e, err := adm.ListEndOffsets(ctx, testTopic)
	if err != nil {
		t.Fatal(err)
	}
	committed, ends = map[int32]int64{}, map[int32]int64{}
	c.Each(func(o kadm.OffsetResponse) { committed[o.Partition] = o.At })
	e.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	return committed, ends
}

func caughtUp(t *testing.T, addr string) bool {
	committed, ends := offsets(t, addr)
	for p, end := range ends {
		if end > 0 && committed[p] != end {
			return false
		}
	}
	return true
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOffsetsAreCommittedOnlyAfterTheBatchIsPersisted(t *testing.T) {
	addr := broker(t)
	h := newRecorder()
	release := h.holdPersist()
	defer release()
	r := start(t, addr, h, nil)
	produce(t, addr, 200)
	<-h.entered // a batch is in Persist, held
	time.Sleep(500 * time.Millisecond)
	if committed, _ := offsets(t, addr); len(committed) != 0 {
		t.Fatalf("committed %v while the batch was not persisted", committed)
	}
	release()
	eventually(t, 10*time.Second, "the group to commit the end of every partition", func() bool { return caughtUp(t, addr) })
	if n := h.count(); n != 200 {
		t.Errorf("%d records persisted, want 200", n)
	}
	_ = r
}

func TestATransientFailureIsRetriedAndNothingIsCommittedMeanwhile(t *testing.T) {
	addr := broker(t)
	h := newRecorder()
	h.failures = 5
	r := start(t, addr, h, nil)
	produce(t, addr, 40)
	eventually(t, 10*time.Second, "a failed attempt to be reported", func() bool { return r.c.Err() != nil })
	if committed, _ := offsets(t, addr); len(committed) != 0 && h.count() == 0 {
		t.Fatalf("committed %v before any batch was persisted", committed)
	}
	eventually(t, 10*time.Second, "the retries to succeed and commit", func() bool { return caughtUp(t, addr) })
	eventually(t, 5*time.Second, "the error to clear", func() bool { return r.c.Err() == nil })
	if got := testutil.ToFloat64(r.m.Retries); got != 5 {
		t.Errorf("signal_batch_retries_total = %v, want 5", got)
	}
	if n := h.count(); n != 40 {
		t.Errorf("%d records persisted, want 40", n)
	}
}

// A shutdown while a batch keeps failing gives up on it after
// DrainTimeout, commits nothing for it, and the next consumer gets it.
func TestAShutdownAbandonsAFailingBatchUncommitted(t *testing.T) {
	addr := broker(t)
	h := newRecorder()
	h.failures = 1 << 30
	r := start(t, addr, h, func(o *ConsumerOptions) { o.DrainTimeout = 300 * time.Millisecond })
	produce(t, addr, 30)
	eventually(t, 10*time.Second, "retries", func() bool { return testutil.ToFloat64(r.m.Retries) >= 2 })
	r.stop(t)
	if committed, _ := offsets(t, addr); len(committed) != 0 {
		t.Fatalf("committed %v for a batch never persisted", committed)
	}
	h2 := newRecorder()
	start(t, addr, h2, nil)
	eventually(t, 10*time.Second, "the next consumer to handle everything", func() bool { return caughtUp(t, addr) })
	if n := h2.count(); n != 30 {
		t.Errorf("the next consumer persisted %d records, want 30", n)
	}
}

// A rebalance waits until the batch in hand is persisted and committed:
// the member joining never gets a record the first one handled, so each
// record is persisted exactly once.
func TestARebalanceWaitsForTheBatchInHand(t *testing.T) {
	addr := broker(t)
	shared := newRecorder()
	release := shared.holdPersist()
	defer release()
	a := start(t, addr, shared, nil)
	eventually(t, 10*time.Second, "A to own every partition", func() bool { return a.owned() == EmbeddedPartitions })
	produce(t, addr, 400)
	<-shared.entered // A holds a batch
	b := start(t, addr, shared, nil)
	time.Sleep(1500 * time.Millisecond) // B's join is pending: the group waits for A
	if n := b.owned(); n != 0 {
		t.Fatalf("B owns %d partitions while A still holds a batch of them", n)
	}
	release()
	eventually(t, 15*time.Second, "the partitions to be shared", func() bool { return a.owned() > 0 && b.owned() > 0 })
	produce(t, addr, 400)
	eventually(t, 15*time.Second, "everything committed", func() bool { return caughtUp(t, addr) })
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if len(shared.persisted) != 800 {
		t.Errorf("%d records persisted, want 800", len(shared.persisted))
	}
	for k, n := range shared.persisted {
		if n != 1 {
			t.Errorf("record %s persisted %d times", k, n)
		}
	}
}

// Per partition, records are persisted in offset order.
func TestRecordsOfAPartitionArePersistedInOrder(t *testing.T) {
	addr := broker(t)
	h := newRecorder()
	start(t, addr, h, func(o *ConsumerOptions) { o.BatchSize = 7 })
	produce(t, addr, 500)
	eventually(t, 10*time.Second, "everything committed", func() bool { return caughtUp(t, addr) })
	h.mu.Lock()
	defer h.mu.Unlock()
	last := map[string]int{}
	for _, k := range h.order {
		var p, off int
		fmt.Sscanf(k, "%d/%d", &p, &off)
		if prev, ok := last[strconv.Itoa(p)]; ok && off != prev+1 {
			t.Fatalf("partition %d: offset %d after %d", p, off, prev)
		}
		last[strconv.Itoa(p)] = off
	}
}

// The lag gauge comes from the brokers on a timer: it rises while the
// batch in hand cannot be persisted (the database is down), and falls to
// zero once it is.
func TestTheLagGaugeRisesWhileConsumptionIsStalled(t *testing.T) {
	addr := broker(t)
	h := newRecorder()
	release := h.holdPersist()
	defer release()
	r := start(t, addr, h, nil)
	eventually(t, 10*time.Second, "the group to be joined", func() bool { j, _ := r.c.Joined(); return j })
	total := func() float64 {
		sum := 0.0
		for p := 0; p < EmbeddedPartitions; p++ {
			sum += testutil.ToFloat64(r.m.Lag.WithLabelValues(testTopic, strconv.Itoa(p)))
		}
		return sum
	}
	produce(t, addr, 100)
	eventually(t, 5*time.Second, "the lag to show 100", func() bool { return total() == 100 })
	produce(t, addr, 150)
	eventually(t, 5*time.Second, "the lag to rise to 250 while stalled", func() bool { return total() == 250 })
	release()
	eventually(t, 10*time.Second, "the lag to fall to 0", func() bool { return total() == 0 })
}

// A stopped consumer leaves its group: the others need not wait for its
// session to time out. A static member (InstanceID) leaves too.
func TestStoppingLeavesTheGroup(t *testing.T) {
	for _, id := range []string{"", "signal-0"} {
		t.Run("instance id "+strconv.Quote(id), func(t *testing.T) {
			addr := broker(t)
			r := start(t, addr, newRecorder(), func(o *ConsumerOptions) { o.InstanceID = id; o.SessionTimeout = 30 * time.Second })
			eventually(t, 10*time.Second, "the group to be joined", func() bool { return r.owned() == EmbeddedPartitions })
			r.stop(t)
			cl, _ := kgo.NewClient(kgo.SeedBrokers(addr))
			defer cl.Close()
			groups, err := kadm.NewClient(cl).DescribeGroups(context.Background(), testGroup)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(groups[testGroup].Members); n != 0 {
				t.Errorf("%d member(s) left in the group after Run returned", n)
			}
		})
	}
}

// With reset_offset latest, a partition the group never committed (no
// record came while its first owner held it) starts every later owner
// where the group first started it, not at the end as of that owner's
// assignment: records produced between the two owners are consumed, not
// skipped.
func TestANewGroupsStartIsKeptWhenItsPartitionsMove(t *testing.T) {
	addr := broker(t)
	h := newRecorder()
	latest := func(o *ConsumerOptions) { o.ResetOffset = "latest" }
	first := start(t, addr, h, latest)
	eventually(t, 10*time.Second, "the first member to own every partition", func() bool { return first.owned() == EmbeddedPartitions })
	eventually(t, 10*time.Second, "the start of every partition to be committed", func() bool {
		committed, _ := offsets(t, addr)
		return len(committed) == EmbeddedPartitions
	})
	first.stop(t)
	produce(t, addr, 20) // while no member owns the partitions
	start(t, addr, h, latest)
	eventually(t, 10*time.Second, "the next owner to consume what came in between", func() bool { return h.count() == 20 })
}
