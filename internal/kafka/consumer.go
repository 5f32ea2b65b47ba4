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

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
	// partitions after this long. Zero: DefaultSessionTimeout.
	SessionTimeout time.Duration
	// InstanceID, when set, makes this a static member (KIP-345): a
	// restart with the same id takes the old member's place at once,
	// instead of waiting for its session to time out.
	InstanceID string
	// LagInterval is how often the lag gauge is refreshed from the
	// broker's end offsets and the group's committed offsets. Zero: 5 s.
	LagInterval time.Duration
	BatchSize   int
	RetryMin    time.Duration
	RetryMax    time.Duration
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
	closeOnce       sync.Once

	mu      sync.Mutex
	lastErr error // the last handling failure; nil once a batch commits
	pollErr error // the last poll failure; cleared by records, or 10 s without one
	pollAt  time.Time
	owned   map[int32]bool
	joined  bool
	// problem is the Kafka failure last logged; it is logged again only
	// when it changes, so a broker that refuses us does not flood the log.
	// problemAt is when any Kafka failure was last seen.
	problem   string
	problemAt time.Time
}

// DefaultSessionTimeout is the group session timeout when none is set:
// Kafka's lowest allowed by default (group.min.session.timeout.ms), so a
// crashed instance's partitions move within seconds.
const DefaultSessionTimeout = 6 * time.Second

// heartbeatInterval is a sixth of the session timeout, between 100 ms and
// 3 s: members learn of a rebalance at their next heartbeat, and a member
// survives several lost heartbeats before its session ends.
func heartbeatInterval(session time.Duration) time.Duration {
	return min(max(session/6, 100*time.Millisecond), 3*time.Second)
}

// NewConsumer creates the group client, which may start joining the group at
// once: Run (or Close) must follow.
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
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.LagInterval <= 0 {
		o.LagInterval = 5 * time.Second
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
		// Records of aborted transactions are never handed out, and those
		// of open ones only once they commit.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.SessionTimeout(o.SessionTimeout),
		kgo.HeartbeatInterval(heartbeatInterval(o.SessionTimeout)),
		// A polled batch is handled and committed before partitions may
		// move: no commit can land for a partition this member lost.
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.WithLogger(newKgoLogger(o.Logger)),
	}, o.Client...)
	if o.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(o.InstanceID))
	}
	c := &Consumer{o: o, log: o.Logger, owned: map[int32]bool{}}
	opts = append(opts,
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { c.rebalanceWanted.Store(true) }),
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			c.pinStart(ctx, cl, m)
			c.track(m, true)
		}),
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

// pinStart commits, for each partition just assigned that the group has
// never committed, the offset a reset to latest starts it at now. It runs
// before the client reads the group's offsets for them, so this member
// starts there, and so does every later owner. Without it, a partition
// that had no record while its first owner held it (so nothing was
// committed) would start each new owner at the end as of that owner's
// assignment, skipping the records produced in between: moved by a
// rebalance, they were lost. With reset_offset earliest every owner starts
// at the first record kept, so there is nothing to pin.
func (c *Consumer) pinStart(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	if c.o.ResetOffset == "earliest" || len(assigned) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	committed, err := adm.FetchOffsets(ctx, c.o.Group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		c.log.Warn("cannot read the group's offsets to pin where new partitions start", "err", err)
		return
	}
	topics := make([]string, 0, len(assigned))
	for t := range assigned {
		topics = append(topics, t)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topics...) // read_committed: where latest starts
	if err != nil {
		c.log.Warn("cannot list end offsets to pin where new partitions start", "err", err)
		return
	}
	pin := map[string]map[int32]kgo.EpochOffset{}
	for t, parts := range assigned {
		for _, p := range parts {
			if _, ok := committed.Lookup(t, p); ok {
				continue
			}
			end, ok := ends.Lookup(t, p)
			if !ok || end.Err != nil {
				continue
			}
			if pin[t] == nil {
				pin[t] = map[int32]kgo.EpochOffset{}
			}
			pin[t][p] = kgo.EpochOffset{Epoch: -1, Offset: end.Offset}
		}
	}
	if len(pin) == 0 {
		return
	}
	cl.CommitOffsetsSync(ctx, pin, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil {
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if perr := kerr.ErrorForCode(p.ErrorCode); perr != nil && err == nil {
						err = perr
					}
				}
			}
		}
		if err != nil {
			c.log.Warn("pinning where new partitions start failed: they start at the end as of their next owner", "err", err)
			return
		}
		c.log.Info("new partitions start where they were first assigned", "partitions", pin)
	})
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

// Err is the last failure, or nil when polls and the last batch work.
func (c *Consumer) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pollErr != nil {
		return c.pollErr
	}
	return c.lastErr
}

// setPollErr records the outcome of a poll: an error, or none (which
// clears an earlier one once records arrive or 10 s passed, so that one
// failed join among retries does not flap readiness).
func (c *Consumer) setPollErr(err error, gotRecords bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil:
		c.pollErr, c.pollAt = err, time.Now()
	case gotRecords || time.Since(c.pollAt) > 10*time.Second:
		c.pollErr = nil
	}
}

func (c *Consumer) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// Ready is the readiness check of the Kafka side: the brokers answer (with
// our credentials and certificates), the consumer has taken its place in
// the group once (owning no partition is normal: instances may outnumber
// them, and later rebalances do not make it unready), and the last poll
// and batch worked.
func (c *Consumer) Ready(ctx context.Context) error {
	if err := c.cl.Ping(ctx); err != nil {
		err = Explain(c.cl, err)
		c.report(err, false)
		return fmt.Errorf("brokers unreachable: %w", err)
	}
	if joined, _ := c.Joined(); !joined {
		return errors.New("joining the consumer group")
	}
	return c.Err()
}

// report logs a Kafka failure once: again only when it changes. It clears
// (err nil, with records in hand, or quiet) once records arrive, or once
// no failure was seen for 30 s, and says so once.
func (c *Consumer) report(err error, gotRecords bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		if c.problem != "" && (gotRecords || time.Since(c.problemAt) > 30*time.Second) {
			c.log.Info("kafka reachable again", "after", c.problem)
			c.problem = ""
		}
		return
	}
	c.problemAt = time.Now()
	if msg := err.Error(); msg != c.problem {
		c.problem = msg
		c.log.Error("kafka unavailable; retrying (logged again only if the error changes)", "err", msg)
	}
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
	defer c.Close()
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		c.lagLoop(lagCtx)
	}()
	defer func() { stopLag(); <-lagDone }()
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
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pollErr != nil {
				return
			}
			if topic == "" {
				pollErr = Explain(c.cl, err) // the group or the connection, not one partition
			} else {
				pollErr = fmt.Errorf("fetch %s[%d]: %w", topic, p, Explain(c.cl, err))
			}
		})
		records := fetches.Records()
		c.report(pollErr, len(records) > 0)
		c.setPollErr(pollErr, len(records) > 0)
		if len(records) == 0 {
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

// Close leaves the group and closes the client; Run does it when it
// returns. Call it (defer it) where Run may never be called: the client
// joins the group as soon as it is created.
func (c *Consumer) Close() { c.closeOnce.Do(c.close) }

// close leaves the group and closes the client. A static member
// (InstanceID) is not removed by franz-go's close, by design of KIP-345:
// it leaves explicitly, so a stopped instance's partitions move at once
// whatever the membership; only a crash makes the group wait.
func (c *Consumer) close() {
	c.cl.AllowRebalance()
	if c.o.InstanceID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.cl.LeaveGroupContext(ctx) // stops the group loop; sends nothing for a static member
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group = c.o.Group
		m := kmsg.NewLeaveGroupRequestMember()
		m.InstanceID = kmsg.StringPtr(c.o.InstanceID)
		m.Reason = kmsg.StringPtr("signal instance stopping")
		req.Members = append(req.Members, m)
		if _, err := req.RequestWith(ctx, c.cl); err != nil {
			c.log.Warn("leaving the group as a static member failed: its partitions move after kafka.session_timeout", "err", err)
		}
	}
	c.cl.Close()
}

// lagLoop refreshes the lag gauge every LagInterval from the broker's end
// offsets and the group's committed offsets: both come from the brokers,
// so the figure keeps rising while this instance (or whichever owns a
// partition) is stalled, and every instance reports the whole topic.
func (c *Consumer) lagLoop(ctx context.Context) {
	if c.o.Metrics == nil {
		return
	}
	adm := kadm.NewClient(c.cl)
	t := time.NewTicker(c.o.LagInterval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, c.o.LagInterval)
		lags, err := c.lag(rctx, adm)
		cancel()
		if err != nil {
			c.log.Debug("lag refresh failed; keeping the last figures", "err", err)
		}
		for p, l := range lags {
			c.o.Metrics.Lag.WithLabelValues(c.o.Topic, strconv.Itoa(int(p))).Set(float64(l))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lag is, per partition, the records between the group's committed offset
// and the partition's end. A partition with no commit counts from where
// the group would start: its first offset with reset "earliest", its end
// (no lag) with "latest".
func (c *Consumer) lag(ctx context.Context, adm *kadm.Client) (map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, c.o.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	committed, err := adm.FetchOffsets(ctx, c.o.Group)
	if err != nil {
		return nil, fmt.Errorf("committed offsets: %w", err)
	}
	var starts kadm.ListedOffsets
	out := map[int32]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		from := e.Offset
		if o, ok := committed.Lookup(e.Topic, e.Partition); ok && o.Err == nil && o.At >= 0 {
			from = o.At
		} else if c.o.ResetOffset == "earliest" {
			if starts == nil {
				if starts, err = adm.ListStartOffsets(ctx, c.o.Topic); err != nil {
					return
				}
			}
			if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Err == nil {
				from = s.Offset
			}
		}
		out[e.Partition] = max(e.Offset-from, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("start offsets: %w", err)
	}
	return out, nil
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
