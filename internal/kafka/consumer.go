package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/metrics"
)

// Handler turns polled records into a Batch. Prepare does no I/O (decode,
// validate, render), so the consumer prepares the next batch while the
// previous one is persisted. Records of one partition are in offset order.
type Handler interface {
	Prepare(records []*kgo.Record) Batch
}

// Batch is a prepared batch. Persist returns an error only for a failure
// worth retrying (the database is away); anything wrong with a record
// itself is the batch's to settle (a dead letter). Publish runs after a
// successful Persist and before the offsets are committed (pushes).
type Batch interface {
	Persist(ctx context.Context) error
	Publish(ctx context.Context)
}

// ConsumerOptions configure the consumer.
type ConsumerOptions struct {
	Client      []kgo.Opt // connection options (ClientOpts)
	Topic       string
	Group       string
	ResetOffset string // "latest" or "earliest"
	// SessionTimeout: a member that stops heartbeating (a crash) loses its
	// partitions after this long. Zero keeps the client's default (45 s).
	SessionTimeout time.Duration
	BatchSize      int
	RetryMin       time.Duration
	RetryMax       time.Duration
	// DrainTimeout bounds how long a batch in progress may take to finish
	// once shutdown begins; after it the batch is left uncommitted and will
	// be redelivered (harmlessly) to whoever consumes next.
	DrainTimeout time.Duration
	Handler      Handler
	Metrics      *metrics.Metrics
	Logger       *slog.Logger
}

// Consumer reads the topic in a consumer group. Offsets are committed only
// after the batch holding them was handled, so nothing is skipped; the
// handler makes redelivery harmless, so nothing is doubled.
//
// Three stages run at once: this goroutine polls and prepares batch N+2,
// a second one persists batch N+1, a third publishes batch N and commits
// its offsets. Each stage takes the batches one after the other, in poll
// order. A
// rebalance waits until every polled batch is committed (the stages drain
// as soon as franz-go signals one is pending), so no offset is ever
// committed for a partition this member no longer owns.
type Consumer struct {
	o   ConsumerOptions
	cl  *kgo.Client
	log *slog.Logger

	rebalanceWanted atomic.Bool // set when a rebalance waits for us

	mu      sync.Mutex
	lastErr error // the last poll or handling failure; nil once things work
	owned   map[int32]bool
	joined  bool
}

// NewConsumer creates the group client. It does not contact the brokers yet.
func NewConsumer(o ConsumerOptions) (*Consumer, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = 30 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	reset := kgo.NewOffset().AtEnd()
	if o.ResetOffset == "earliest" {
		reset = kgo.NewOffset().AtStart()
	}
	opts := append([]kgo.Opt{
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(o.Topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(reset),
		// A polled batch is handled and committed before partitions may
		// move: no commit can land for a partition this member lost.
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.WithLogger(kgoLogger{o.Logger}),
	}, o.Client...)
	if o.SessionTimeout > 0 {
		// Members learn of a rebalance at their next heartbeat: keep it
		// frequent (the client's default, 3 s) whatever the session timeout.
		opts = append(opts, kgo.SessionTimeout(o.SessionTimeout), kgo.HeartbeatInterval(min(3*time.Second, o.SessionTimeout/3)))
	}
	c := &Consumer{o: o, log: o.Logger, owned: map[int32]bool{}}
	opts = append(opts,
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { c.rebalanceWanted.Store(true) }),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { c.track(m, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { c.track(m, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { c.track(m, false) }),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	c.cl = cl
	return c, nil
}

func (c *Consumer) track(m map[string][]int32, assigned bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.joined = true
	for _, ps := range m {
		for _, p := range ps {
			if assigned {
				c.owned[p] = true
			} else {
				delete(c.owned, p)
			}
		}
	}
	c.log.Info("partitions changed", "assigned", assigned, "partitions", m, "owned", len(c.owned))
}

// Joined reports whether the consumer has joined its group, and how many
// partitions it owns now (zero is normal when instances outnumber them).
func (c *Consumer) Joined() (bool, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.joined, len(c.owned)
}

// Client is the underlying franz-go client (readiness pings, admin).
func (c *Consumer) Client() *kgo.Client { return c.cl }

// Err is the last failure, or nil when the last poll and batch worked.
func (c *Consumer) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

func (c *Consumer) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// job is a polled batch on its way through the persist stage.
type job struct {
	records []*kgo.Record
	fetches kgo.Fetches
	batch   Batch
	start   time.Time
}

// Run consumes until ctx ends, then finishes the batches in hand, commits
// them, leaves the group and closes the client.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.cl.CloseAllowingRebalance()
	jobs := make(chan job, 1)      // prepared, waiting to persist
	persisted := make(chan job, 1) // persisted, waiting to publish and commit
	var inflight sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(persisted)
		c.persistStage(ctx, jobs, persisted, &inflight)
	}()
	go func() {
		defer close(done)
		c.commitStage(ctx, persisted, &inflight)
	}()
	defer func() {
		close(jobs)
		<-done
	}()
	drain := func() {
		inflight.Wait()
		c.rebalanceWanted.Store(false)
		c.cl.AllowRebalance()
	}
	for {
		if ctx.Err() != nil {
			inflight.Wait()
			return nil
		}
		if c.rebalanceWanted.Load() {
			drain()
		}
		// Do not sit in a poll for long: come back to notice a rebalance
		// request, and to drain once the topic is idle.
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := c.cl.PollRecords(pollCtx, c.o.BatchSize)
		cancel()
		if fetches.IsClientClosed() {
			inflight.Wait()
			return nil
		}
		if ctx.Err() != nil {
			// Records polled now are not handed on: nothing commits them.
			inflight.Wait()
			return nil
		}
		pollErr := error(nil)
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			pollErr = fmt.Errorf("fetch %s[%d]: %w", topic, p, err)
			c.log.Warn("kafka fetch failed", "topic", topic, "partition", p, "err", err)
		})
		records := fetches.Records()
		if len(records) == 0 {
			if pollErr != nil {
				c.setErr(pollErr)
			}
			drain() // idle: nothing in hand, let the group move
			continue
		}
		start := time.Now()
		inflight.Add(1)
		jobs <- job{records: records, fetches: fetches, batch: c.o.Handler.Prepare(records), start: start}
	}
}

// persistStage persists batches in order. Once shutdown abandons a batch,
// every later one is abandoned too (uncommitted, so redelivered later):
// committing a later batch would skip the earlier one.
func (c *Consumer) persistStage(ctx context.Context, jobs <-chan job, persisted chan<- job, inflight *sync.WaitGroup) {
	abandoned := false
	for j := range jobs {
		if !abandoned && !c.persist(ctx, j) {
			abandoned = true
		}
		if abandoned {
			inflight.Done()
			continue
		}
		persisted <- j
	}
}

// commitStage publishes persisted batches and commits their offsets, in order.
func (c *Consumer) commitStage(ctx context.Context, persisted <-chan job, inflight *sync.WaitGroup) {
	for j := range persisted {
		hctx, cancel := drainContext(ctx, c.o.DrainTimeout)
		j.batch.Publish(hctx)
		if c.o.Metrics != nil {
			c.o.Metrics.Consumed.Add(float64(len(j.records)))
			c.o.Metrics.BatchSize.Observe(float64(len(j.records)))
			c.o.Metrics.BatchSeconds.Observe(time.Since(j.start).Seconds())
		}
		// The rows are stored: a failed commit only means a harmless redelivery.
		if err := c.cl.CommitRecords(hctx, j.records...); err != nil {
			c.log.Warn("offset commit failed; the batch may be redelivered (no duplicates result)", "err", err)
			c.setErr(fmt.Errorf("offset commit: %w", err))
		} else {
			c.setErr(nil)
			c.recordLag(j.fetches)
		}
		cancel()
		inflight.Done()
	}
}

// persist stores a batch, retrying transient failures with capped
// exponential backoff and jitter. It reports false when shutdown
// interrupted it.
func (c *Consumer) persist(ctx context.Context, j job) bool {
	hctx, cancel := drainContext(ctx, c.o.DrainTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := j.batch.Persist(hctx)
		if err == nil {
			return true
		}
		if hctx.Err() != nil {
			c.log.Warn("shutdown interrupted a batch; it will be redelivered", "records", len(j.records), "err", err)
			return false
		}
		wait := backoff(attempt, c.o.RetryMin, c.o.RetryMax)
		c.setErr(fmt.Errorf("handling a batch failed (retrying): %w", err))
		c.log.Warn("batch failed, retrying", "records", len(j.records), "attempt", attempt+1, "wait", wait.Round(time.Millisecond).String(), "err", err)
		if c.o.Metrics != nil {
			c.o.Metrics.Retries.Inc()
		}
		select {
		case <-hctx.Done():
			c.log.Warn("shutdown interrupted a batch; it will be redelivered", "records", len(j.records))
			return false
		case <-time.After(wait):
		}
	}
}

func (c *Consumer) recordLag(fetches kgo.Fetches) {
	if c.o.Metrics == nil {
		return
	}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 {
			lag := p.HighWatermark - (p.Records[n-1].Offset + 1)
			c.o.Metrics.Lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(lag, 0)))
		}
	})
}

// drainContext is not cancelled by ctx itself, only DrainTimeout after it.
func drainContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(hctx, func() { t.Stop() })
	})
	return hctx, func() { stop(); cancel() }
}

// backoff is min·2^attempt capped at max, with ±25 % jitter so instances
// that failed together do not retry together.
func backoff(attempt int, minD, maxD time.Duration) time.Duration {
	d := minD << min(attempt, 30)
	if d <= 0 || d > maxD {
		d = maxD
	}
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return d + jitter
}
