package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/bench/report"
)

// The failover scenario: two instances with the default settings at 2,000
// msg/s, one SIGKILLed: the gap in deliveries, nothing lost or stored twice.
func init() {
	register(&scenario{name: "failover", order: 60,
		summary: "two instances with the default settings at 2,000 msg/s, one SIGKILLed: the gap in deliveries",
		setup:   func(*flag.FlagSet) run { return &failoverRun{} }})
}

// targetFailoverMs is the target, on this 2-core machine.
const targetFailoverMs = 10000.0

type failoverRun struct{ res *failoverResult }

func (x *failoverRun) check() error { return nil }

func (x *failoverRun) measure(ctx context.Context, e *env) (err error) {
	x.res, err = x.run(ctx, e)
	return err
}

func (x *failoverRun) results() map[string]any { return map[string]any{"failover": x.res} }

func (x *failoverRun) report(rp *reporter) {
	r := x.res
	if r == nil {
		return
	}
	lossless := r.FramesMissing == 0 && r.Rows == r.RowsExpected && r.RowsDistinct == r.RowsExpected
	gapMet := report.AtMost(r.GapMs, targetFailoverMs)
	s := report.Section{
		Title: "Failover",
		Method: fmt.Sprintf(`Two `+"`signalctl serve`"+` processes with the default settings (kafka.session_timeout 6 s) share
the topic's 4 partitions; %d recipients have a client on instance A, each recipient's messages on one
partition (keyed by organizer). A producer sends %s msg/s (2 recipients each); after a warm-up, instance B
is killed with SIGKILL (partitions %v) and the load goes on for 20 s. The gap is the longest time with no
push for the recipients of B's partitions, from their last push before the kill; the survivor's own
recipients over the same span are the reference. Caught up: from the kill to the last frame for B's
recipients delivered more than %.0f ms after it was sent (the p99 of the survivor's own recipients after
the kill, at least 250 ms). Frames are counted per (recipient, message); rows per (message, recipient).`,
			r.Clients, report.Thousands(int64(r.Rate)), r.KilledPartitions, r.ThresholdMs),
		Rows: []report.Row{
			{Figure: "longest gap, killed instance's recipients", Value: r.GapMs, Unit: "ms", Reference: "survivor's recipients", RefValue: r.OtherGapMs,
				Target: fmt.Sprintf("≤ %.0f s", targetFailoverMs/1000), Met: gapMet},
			{Figure: "caught up after the kill", Value: r.CatchUpMs, Unit: "ms", Target: fmt.Sprintf("≤ %.0f s", targetFailoverMs/1000), Met: report.AtMost(r.CatchUpMs, targetFailoverMs)},
			{Figure: "p99 before the kill", Value: r.BeforeKill.P99, Unit: "ms"},
			{Figure: "p99 of the survivor's recipients after the kill", Value: r.OthersAfterKill.P99, Unit: "ms"},
		},
		Notes: []string{
			fmt.Sprintf("Messages: %s (%s after the kill). Frames: %s of %s distinct, %s missing, %s repeated (a notification pushed again after its uncommitted batch was redelivered to the survivor: push is at least once, clients drop ids they have shown).",
				report.Thousands(int64(r.Sent)), report.Thousands(int64(r.SentAfterKill)), report.Thousands(int64(r.FramesDistinct)), report.Thousands(int64(r.FramesExpected)),
				report.Thousands(int64(r.FramesMissing)), report.Thousands(int64(r.FramesRepeated))),
			fmt.Sprintf("Rows: %s (%s distinct (message, recipient)), expected %s.", report.Thousands(int64(r.Rows)), report.Thousands(int64(r.RowsDistinct)), report.Thousands(int64(r.RowsExpected))),
		},
	}
	rp.rep.Sections = append(rp.rep.Sections, s)
	rp.rep.Targets = append(rp.rep.Targets,
		report.Target{Goal: "failover (SIGKILL of one of two instances, defaults, 2,000 msg/s): gap and catch-up ≤ 10 s, nothing lost, nothing stored twice",
			Measured: fmt.Sprintf("gap %s, caught up %s, %d frames missing, %d rows of %d", report.FormatValue(r.GapMs, "ms"), report.FormatValue(r.CatchUpMs, "ms"), r.FramesMissing, r.Rows, r.RowsExpected),
			Met:      report.Bool(*gapMet && r.CatchUpMs <= targetFailoverMs && lossless)})
}

// failoverResult is the failover scenario: two instances with the
// default settings, one SIGKILLed under steady load.
type failoverResult struct {
	Rate             float64 `json:"rate"`
	Clients          int     `json:"clients"`
	KilledPartitions []int32 `json:"killedPartitions"`
	Sent             int     `json:"sent"`
	SentAfterKill    int     `json:"sentAfterKill"`
	// GapMs: the longest time with no push for the killed instance's
	// recipients (those whose messages were on its partitions), from
	// their last push before the kill on. OtherGapMs: the same for the
	// survivor's own recipients over the same span.
	GapMs      float64 `json:"gapMs"`
	OtherGapMs float64 `json:"otherGapMs"`
	// CatchUpMs: from the kill to the last frame for the killed
	// instance's recipients delivered later than ThresholdMs after it was
	// sent: the p99 of the survivor's own recipients after the kill (at
	// least 250 ms), so the machine's load meanwhile is not counted.
	CatchUpMs       float64        `json:"catchUpMs"`
	ThresholdMs     float64        `json:"thresholdMs"`
	BeforeKill      report.Latency `json:"beforeKillMs"`
	OthersAfterKill report.Latency `json:"othersAfterKillMs"`
	// Frames: expected is 2 per message; distinct (recipient, message)
	// pairs received; repeated ones (the same notification pushed again
	// after a redelivery: push is at least once); missing ones.
	FramesExpected int `json:"framesExpected"`
	FramesDistinct int `json:"framesDistinct"`
	FramesRepeated int `json:"framesRepeated"`
	FramesMissing  int `json:"framesMissing"`
	Rows           int `json:"rows"`
	RowsDistinct   int `json:"rowsDistinct"`
	RowsExpected   int `json:"rowsExpected"`
}

// failoverRecipients: organizer k's messages go to recipients f<2k> and
// f<2k+1>, so each recipient's messages are all on one partition (the
// organizer is the key).
func failoverRecipients(i int) [2]string {
	k := i % 100
	return [2]string{"f" + strconv.Itoa(2*k), "f" + strconv.Itoa(2*k+1)}
}

// runFailover: two serve processes with the default settings (6 s
// session), all clients on A, 2,000 messages/s; B is SIGKILLed after a
// warm-up, the load goes on, and the deliveries to B's recipients are
// examined.
func (x *failoverRun) run(ctx context.Context, e *env) (*failoverResult, error) {
	broker, err := startBroker(e, topic)
	if err != nil {
		return nil, err
	}
	dbURL, err := e.database(ctx, "bench_failover")
	if err != nil {
		return nil, err
	}
	defaults := []string{"APP_ENV_KAFKA_GROUP_ID=bench-failover", "SIGNAL_KAFKA_SESSION_TIMEOUT="}
	a, err := e.serve(ctx, serveOpts{name: "failover-a", dbURL: dbURL, broker: broker, extra: append(defaults, "APP_ENV_KAFKA_CLIENT_ID=failover-a")})
	if err != nil {
		return nil, err
	}
	defer a.stop()
	b, err := e.serve(ctx, serveOpts{name: "failover-b", dbURL: dbURL, broker: broker, extra: append(defaults, "APP_ENV_KAFKA_CLIENT_ID=failover-b")})
	if err != nil {
		return nil, err
	}
	defer b.stop()
	adm, closeAdm, err := newAdmin(broker)
	if err != nil {
		return nil, err
	}
	defer closeAdm()
	var owned map[string][]int32
	for deadline := time.Now().Add(30 * time.Second); ; {
		owned = groupAssignments(ctx, adm, "bench-failover")
		if len(owned["failover-a"]) > 0 && len(owned["failover-b"]) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("failover: the two instances did not share the partitions within 30s: %v", owned)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	killed := map[int32]bool{}
	for _, p := range owned["failover-b"] {
		killed[p] = true
	}
	const clients = 200
	pl, st, err := startPool(ctx, e, poolOpts{name: "failover (on A)", url: a.wsURL(), n: clients, minProcs: 1, prefix: "f", srcBase: 2})
	if err != nil {
		return nil, err
	}
	defer pl.close()
	if st.Fail > 0 {
		return nil, fmt.Errorf("failover: %d clients failed: %s", st.Fail, st.Err)
	}
	pl.takeNotif()

	// Produce at the rate; note each organizer's partition.
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0), kgo.RecordDeliveryTimeout(60*time.Second))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	const rate = 2000.0
	warmup, after := 5*time.Second, 20*time.Second
	var (
		mu         sync.Mutex
		partOf     = map[int]int32{} // organizer → partition
		firstErr   atomic.Value
		wg         sync.WaitGroup
		sent       int
		killAt     time.Time
		sentAtKill int
	)
	start := time.Now()
	total := int(rate * (warmup + after).Seconds())
	for sent < total && ctx.Err() == nil {
		if killAt.IsZero() && time.Since(start) >= warmup {
			_ = b.proc.Cmd.Process.Kill() // SIGKILL: no leave, no commit, nothing
			killAt = time.Now()
			sentAtKill = sent
			logf("failover: SIGKILL of instance B (partitions %v) after %d messages", owned["failover-b"], sent)
		}
		due := min(total, int(time.Since(start).Seconds()*rate)+1)
		for ; sent < due; sent++ {
			i := sent
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Key: []byte(organizer(i)), Value: message(i, failoverRecipients(i), time.Now().UnixNano())}, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				mu.Lock()
				partOf[i%100] = r.Partition
				mu.Unlock()
			})
		}
		time.Sleep(500 * time.Microsecond)
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, fmt.Errorf("failover: produce: %w", err)
	}
	// Everything delivered, or 60 s.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		if pl.notifCount() >= 2*sent {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = sleepCtx(ctx, time.Second) // stragglers and repeats
	samples := pl.takeNotif()

	res := &failoverResult{Rate: rate, Clients: clients, Sent: sent, SentAfterKill: sent - sentAtKill, FramesExpected: 2 * sent}
	for p := range killed {
		res.KilledPartitions = append(res.KilledPartitions, p)
	}
	sort.Slice(res.KilledPartitions, func(i, j int) bool { return res.KilledPartitions[i] < res.KilledPartitions[j] })
	recipientKilled := func(idx int) bool { return killed[partOf[idx/2]] } // f<2k>, f<2k+1> ← organizer k

	// Frames: distinct, repeated, missing.
	type frameKey struct {
		idx int
		s   int64
	}
	seen := map[frameKey]int{}
	var before []float64
	for _, s := range samples {
		seen[frameKey{s.idx, s.s}]++
		if s.s < killAt.UnixNano() && s.s > start.Add(2*time.Second).UnixNano() {
			before = append(before, float64(s.r-s.s)/1e6)
		}
	}
	res.FramesDistinct = len(seen)
	for _, n := range seen {
		res.FramesRepeated += n - 1
	}
	res.FramesMissing = res.FramesExpected - res.FramesDistinct
	res.BeforeKill = report.Summarize(before)
	// The reference latency is the survivor's own recipients' over the
	// same span: what the machine delivers meanwhile, failover aside.
	var others []float64
	for _, s := range samples {
		if s.s >= killAt.UnixNano() && !recipientKilled(s.idx) {
			others = append(others, float64(s.r-s.s)/1e6)
		}
	}
	res.OthersAfterKill = report.Summarize(others)
	res.ThresholdMs = max(250, res.OthersAfterKill.P99)

	// Gaps: the longest silence per group of recipients, from each group's
	// last push before the kill to its last push.
	gap := func(of func(idx int) bool) float64 {
		var rs []int64
		for _, s := range samples {
			if of(s.idx) {
				rs = append(rs, s.r)
			}
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
		from := sort.Search(len(rs), func(i int) bool { return rs[i] >= killAt.UnixNano() })
		if from > 0 {
			from-- // the last push before the kill
		}
		longest := int64(0)
		for i := from + 1; i < len(rs); i++ {
			longest = max(longest, rs[i]-rs[i-1])
		}
		return float64(longest) / 1e6
	}
	res.GapMs = gap(recipientKilled)
	res.OtherGapMs = gap(func(idx int) bool { return !recipientKilled(idx) })
	// Catch-up: the last frame of the killed instance's recipients that
	// was later than the threshold, after the kill.
	for _, s := range samples {
		if recipientKilled(s.idx) && s.r >= killAt.UnixNano() && float64(s.r-s.s)/1e6 > res.ThresholdMs {
			res.CatchUpMs = max(res.CatchUpMs, float64(s.r-killAt.UnixNano())/1e6)
		}
	}

	// Rows: exactly one per (message, recipient).
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(ctx)
	res.RowsExpected = 2 * sent
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT (data->'payment'->>'id', recipient_id)) FROM notifications`).Scan(&res.Rows, &res.RowsDistinct); err != nil {
			return res, err
		}
		if res.Rows >= res.RowsExpected {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	logf("failover: killed instance's recipients: longest gap %.0f ms (survivor's own: %.0f ms); caught up %.0f ms after the kill (threshold %.0f ms); frames %d of %d distinct, %d repeated, %d missing; rows %d (%d distinct) of %d",
		res.GapMs, res.OtherGapMs, res.CatchUpMs, res.ThresholdMs, res.FramesDistinct, res.FramesExpected, res.FramesRepeated, res.FramesMissing, res.Rows, res.RowsDistinct, res.RowsExpected)
	return res, nil
}

func newAdmin(broker string) (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// groupAssignments maps each member's client id to its partitions.
func groupAssignments(ctx context.Context, adm *kadm.Client, group string) map[string][]int32 {
	out := map[string][]int32{}
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return out
	}
	for _, m := range groups[group].Members {
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				out[m.ClientID] = append(out[m.ClientID], t.Partitions...)
			}
		}
	}
	return out
}
