package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lxzan/gws"

	"github.com/signal-notify/signal/bench/report"
	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/device"
	"github.com/signal-notify/signal/internal/kafka"
	"github.com/signal-notify/signal/internal/launch"
	"github.com/signal-notify/signal/internal/pgcluster"
	"github.com/signal-notify/signal/internal/store"
)

// The soak scenario (issue 23): a production day at once. The sync
// scenario's world — instances, reconnecting devices, traffic with org
// events and state changes — plus inbox reads, on a PostgreSQL with a
// synchronous streaming replica and a broker that keeps its log on disk,
// and on a schedule: a SIGKILL, a rolling restart of every instance, a
// failover to the replica, a broker restart, a burst at 5× the rate and
// hostile connections. One SLO table; the correctness rows (rows lost and
// duplicated, changes missed, count drift) must be 0, or the run fails.
func init() {
	register(&scenario{name: "soak", order: 140,
		summary: "a production day at once: 3 instances, reconnecting devices, traffic, inbox reads; a SIGKILL, a rolling restart, a PostgreSQL failover, a broker restart, a 5× burst and hostile clients: one SLO table",
		setup: func(fs *flag.FlagSet) run {
			x := &soakRun{o: syncOptions{name: "soak", replica: true, brokerDisk: true, rows: true}}
			fs.IntVar(&x.o.devices, "soak-devices", 4000, "soak: devices (two per recipient)")
			fs.Float64Var(&x.o.rate, "soak-rate", 400, "soak: messages per second (two recipients each)")
			fs.IntVar(&x.o.members, "soak-members", 1000, "soak: recipients in the organizer of org events")
			fs.DurationVar(&x.orgEvery, "soak-org-every", 10*time.Second, "soak: how often an org event goes to every member")
			fs.DurationVar(&x.o.phase, "soak-phase", 30*time.Second, "soak: time before, between and after the faults")
			fs.Float64Var(&x.o.dropPct, "soak-drop", 5, "soak: percent of devices that drop their connection every 10 s")
			fs.Float64Var(&x.o.burst, "soak-burst", 5, "soak: rate multiplier of the burst fault (for half a phase)")
			fs.IntVar(&x.o.hostile, "soak-hostile", 50, "soak: hostile connections (half never read, half never finish their request)")
			fs.Float64Var(&x.o.inboxRate, "soak-inbox-rate", 20, "soak: inbox reads per second")
			fs.IntVar(&x.o.instances, "soak-instances", 3, "soak: instances")
			fs.DurationVar(&x.o.lag, "soak-async-lag", 0, "soak: with -soak-async-replica, the replica's WAL receiver is stopped (SIGSTOP) this long before the failover: the lag whose commits a failover loses")
			fs.BoolVar(&x.o.async, "soak-async-replica", false, "soak: the replica is asynchronous (measures what a failover loses; correctness rows may then be above 0)")
			fs.StringVar(&x.faults, "soak-faults", strings.Join(soakFaults, ","), "soak: faults in order (of "+strings.Join(soakFaults, ", ")+", pg-restart)")
			return x
		}})
}

// soakFaults is the day's schedule, in order.
var soakFaults = []string{"kill", "rolling", "failover", "broker-restart", "burst", "hostile"}

type soakRun struct {
	o        syncOptions
	faults   string
	orgEvery time.Duration
	res      *syncResult
}

func (x *soakRun) check() error {
	x.o.faults = nil
	for f := range strings.SplitSeq(x.faults, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !slices.Contains(soakFaults, f) && f != "pg-restart" {
			return fmt.Errorf("soak: unknown fault %q (of %s, pg-restart)", f, strings.Join(soakFaults, ", "))
		}
		x.o.faults = append(x.o.faults, f)
	}
	if x.o.devices < 2 || x.o.rate <= 0 || x.o.phase < 5*time.Second || x.o.instances < 2 || x.o.burst < 1 || x.orgEvery <= 0 {
		return errors.New("soak: -soak-devices ≥ 2, -soak-rate > 0, -soak-phase ≥ 5s, -soak-instances ≥ 2, -soak-burst ≥ 1, -soak-org-every > 0")
	}
	x.o.orgEvery = max(1, int(x.o.rate*x.orgEvery.Seconds()))
	return nil
}

func (x *soakRun) measure(ctx context.Context, e *env) error {
	var err error
	x.res, err = runSync(ctx, e, x.o, e.bin, false)
	if err != nil {
		return err
	}
	if bad := x.res.correctness(); bad != "" {
		return fmt.Errorf("soak: %s", bad)
	}
	return nil
}

func (x *soakRun) results() map[string]any { return map[string]any{"soak": x.res} }

func (x *soakRun) report(rp *reporter) { reportSoak(rp, x.res, x.o) }

// correctness names the correctness rows that are not 0 ("" when all are).
func (r *syncResult) correctness() string {
	var bad []string
	for _, c := range []struct {
		n    int
		what string
	}{{r.RowsLost, "rows lost"}, {r.RowsDuplicated, "rows duplicated"}, {r.DevicesOff, "devices differing from the database"},
		{r.Missed, "changes missed"}, {r.Drift, "devices with count drift"}, {r.Gaps, "skipped positions"}} {
		if c.n != 0 {
			bad = append(bad, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	return strings.Join(bad, ", ")
}

// soakState is what the soak adds to a sync world.
type soakState struct {
	primary, replica *pgcluster.Cluster
	emb              *kafka.Embedded
	rateMul          atomic.Int64 // percent of the rate (0: 100)

	sentMu    sync.Mutex
	expected  map[string][]string // record key (p-i, t-i) → its recipients
	uncertain map[string]bool     // produce failed: the record may be in the topic or not

	readMu     sync.Mutex
	reads      []latencySample
	readErrors int

	hostileResult *soakHostile
}

// instanceCount is how many instances the world runs.
func (w *syncWorld) instanceCount() int {
	if w.o.instances > 0 {
		return w.o.instances
	}
	return 3
}

// setup starts the world's broker and database.
func (w *syncWorld) setup(ctx context.Context, name string) error {
	e := w.e
	var err error
	if w.o.brokerDisk {
		emb, err := kafka.StartEmbeddedWith(kafka.EmbeddedOptions{DataDir: filepath.Join(e.dir, name+"-broker"), Topics: []string{topic}})
		if err != nil {
			return err
		}
		e.onClose(emb.Close)
		w.soak.emb, w.broker = emb, emb.Addr
	} else if w.broker, err = startBroker(e, topic); err != nil {
		return err
	}
	if !w.o.replica {
		w.dbURL, err = e.databaseFor(ctx, "bench_"+strings.ReplaceAll(name, "-", "_"), w.bin)
		return err
	}
	return w.ownCluster(ctx, name)
}

// ownCluster starts a durable primary that waits for its synchronous
// streaming replica at each commit, as production would; the URL names
// both hosts with target_session_attrs=read-write.
func (w *syncWorld) ownCluster(ctx context.Context, name string) error {
	e := w.e
	dir := filepath.Join(e.dir, name+"-pg")
	p, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "primary"), Durable: true, SyncCommit: true})
	if err != nil {
		return fmt.Errorf("start the primary: %w", err)
	}
	e.onClose(func() { _ = p.Kill() })
	u := p.DatabaseURL("signal")
	if _, err := store.EnsureDatabase(ctx, u); err != nil {
		return err
	}
	cmd := launch.CommandContext(ctx, w.bin, "migrate", "up", "--database-url", u)
	cmd.Env = append(os.Environ(), "SIGNAL_CONFIG=", "NO_COLOR=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("migrate: %w\n%s", err, out)
	}
	r, err := pgcluster.StartReplica(ctx, p, pgcluster.Options{Dir: filepath.Join(dir, "replica"), Durable: true}, !w.o.async)
	if err != nil {
		return fmt.Errorf("start the replica: %w", err)
	}
	e.onClose(func() { _ = r.Kill() })
	w.soak.primary, w.soak.replica = p, r
	pu, err := url.Parse(u)
	if err != nil {
		return err
	}
	pu.Host = p.HostPort() + "," + r.HostPort()
	q := pu.Query()
	q.Set("target_session_attrs", "read-write")
	pu.RawQuery = q.Encode()
	w.dbURL = pu.String()
	logf("%s: PostgreSQL primary on %s, %s replica on %s", name, p.HostPort(), map[bool]string{true: "asynchronous", false: "synchronous"}[w.o.async], r.HostPort())
	return nil
}

// pgPIDs are PostgreSQL's processes: the world's own clusters, or the env's.
func (w *syncWorld) pgPIDs() []int {
	if w.soak.primary != nil {
		return append(clusterPIDs(w.soak.primary), clusterPIDs(w.soak.replica)...)
	}
	return w.e.postgresPIDs()
}

// pingEnv makes idle hostile connections visible within a phase: the
// server cuts a client that sends nothing for 3 ping intervals.
func (w *syncWorld) pingEnv() string {
	if w.o.hostile > 0 {
		return "SIGNAL_WEBSOCKET_PING_INTERVAL=2s"
	}
	return "SIGNAL_WEBSOCKET_PING_INTERVAL=30s"
}

// rateFactor is the traffic's multiplier now (the burst raises it).
func (w *syncWorld) rateFactor() float64 {
	if m := w.soak.rateMul.Load(); m > 0 {
		return float64(m) / 100
	}
	return 1
}

// orgEvery: one message in this many goes to the organizer.
func (w *syncWorld) orgEvery() int {
	if w.o.orgEvery > 0 {
		return w.o.orgEvery
	}
	return 200
}

// sent records a produced record for the row count.
func (w *syncWorld) sent(key string, rcpts []string, err error) {
	if !w.o.rows {
		return
	}
	w.soak.sentMu.Lock()
	defer w.soak.sentMu.Unlock()
	if w.soak.expected == nil {
		w.soak.expected, w.soak.uncertain = map[string][]string{}, map[string]bool{}
	}
	if err != nil {
		w.soak.uncertain[key] = true
		return
	}
	w.soak.expected[key] = rcpts
}

// countRows compares the rows stored with the records produced: one row
// per (record, distinct recipient), never two. A record whose produce
// failed may be stored or not, but not twice.
func (w *syncWorld) countRows(ctx context.Context, res *syncResult) error {
	conn, err := pgx.Connect(ctx, w.dbURL)
	if err != nil {
		return fmt.Errorf("count rows: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT coalesce(data#>>'{payment,id}', data#>>'{ticket,id}', ''), recipient_id, count(*)
		FROM notifications GROUP BY 1, 2`)
	if err != nil {
		return fmt.Errorf("count rows: %w", err)
	}
	stored := map[[2]string]int{}
	for rows.Next() {
		var k, r string
		var n int
		if err := rows.Scan(&k, &r, &n); err != nil {
			return err
		}
		stored[[2]string{k, r}] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count rows: %w", err)
	}
	w.soak.sentMu.Lock()
	defer w.soak.sentMu.Unlock()
	for k, rcpts := range w.soak.expected {
		seen := map[string]bool{}
		for _, r := range rcpts {
			if seen[r] {
				continue
			}
			seen[r] = true
			res.RowsExpected++
			if stored[[2]string{k, r}] == 0 {
				res.RowsLost++
			}
		}
	}
	for kr, n := range stored {
		_, known := w.soak.expected[kr[0]]
		switch {
		case n > 1:
			res.RowsDuplicated += n - 1
		case !known && !w.soak.uncertain[kr[0]]:
			res.RowsDuplicated++ // a row of no record produced
		}
	}
	return nil
}

// inboxReads reads a random device's inbox page on a random instance,
// inboxRate times a second, until stop.
func (w *syncWorld) inboxReads(ctx context.Context) (stop func() *inboxReads) {
	if w.o.inboxRate <= 0 {
		return func() *inboxReads { return nil }
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Duration(float64(time.Second) / w.o.inboxRate))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				wg.Add(1)
				go func() {
					defer wg.Done()
					w.readInbox()
				}()
			}
		}
	}()
	return func() *inboxReads {
		cancel()
		wg.Wait()
		w.soak.readMu.Lock()
		defer w.soak.readMu.Unlock()
		ms := make([]float64, len(w.soak.reads))
		for i, s := range w.soak.reads {
			ms[i] = s.ms
		}
		return &inboxReads{Reads: len(ms), Errors: w.soak.readErrors, Latency: report.Summarize(ms)}
	}
}

// inboxReads summarises the soak's inbox reads. Errors are reads that did
// not answer 200 (an instance restarting, the database failing over).
type inboxReads struct {
	Reads   int            `json:"reads"`
	Errors  int            `json:"errors"`
	Latency report.Latency `json:"latencyMs"`
}

func (w *syncWorld) readInbox() {
	d := w.devices[rand.IntN(len(w.devices))]
	req, err := http.NewRequest("GET", w.pick()+"/notifications?limit=20", nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+d.Token)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	ok := err == nil && resp.StatusCode == http.StatusOK
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	ms := float64(time.Since(start).Microseconds()) / 1000
	w.soak.readMu.Lock()
	defer w.soak.readMu.Unlock()
	if !ok {
		w.soak.readErrors++
		return
	}
	w.soak.reads = append(w.soak.reads, latencySample{at: start, ms: ms})
}

// untilLive waits until every device has been seen live (connected and
// synced) since the fault's work ended, and returns the time from the
// fault's start (at) to that (limit when some never were).
func (w *syncWorld) untilLive(ctx context.Context, at time.Time, limit time.Duration) time.Duration {
	waiting := slices.Clone(w.devices)
	for time.Since(at) < limit && ctx.Err() == nil {
		waiting = slices.DeleteFunc(waiting, func(d *device.SyncClient) bool { return d.Live() })
		if len(waiting) == 0 {
			return time.Since(at)
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	logf("%s: %d devices not live %s after the fault", w.name, len(waiting), limit)
	return limit
}

// pgCPU is PostgreSQL's CPU seconds so far, counting processes that have
// ended (a killed primary, backends of closed connections) at their last
// reading.
func (w *syncWorld) pgCPU() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pgSeen == nil {
		w.pgSeen = map[int]float64{}
	}
	for _, pid := range w.pgPIDs() {
		if c := cpuSeconds(pid); !math.IsNaN(c) {
			w.pgSeen[pid] = max(w.pgSeen[pid], c)
		}
	}
	t := 0.0
	for _, c := range w.pgSeen {
		t += c
	}
	return t
}

// disconnects says whether fault f closes devices' connections (then the
// time until every device is live again is measured).
func disconnects(f string) bool {
	return f == "kill" || f == "rolling" || f == "failover" || f == "pg-restart"
}

// soakFault carries out the soak's own faults.
func (w *syncWorld) soakFault(ctx context.Context, f string) error {
	switch f {
	case "failover": // the primary dies; its synchronous replica is promoted 2 s later
		if w.soak.replica == nil {
			return errors.New("failover needs the soak's replica")
		}
		resume := func() {}
		if w.o.async && w.o.lag > 0 {
			var err error
			if resume, err = w.lagReplica(ctx); err != nil {
				return err
			}
		}
		err := w.soak.primary.Kill()
		resume() // the primary is gone: what the replica missed is lost
		if err != nil {
			return err
		}
		sleepCtx(ctx, 2*time.Second)
		if err := w.soak.replica.Promote(ctx); err != nil {
			return err
		}
		w.soak.primary, w.soak.replica = w.soak.replica, nil
		return nil
	case "broker-restart": // the broker stops for 3 s and comes back with its log
		if w.soak.emb == nil {
			return errors.New("broker-restart needs the soak's broker")
		}
		return w.soak.emb.Restart(3 * time.Second)
	case "burst": // the rate × burst for half a phase
		w.soak.rateMul.Store(int64(w.o.burst * 100))
		sleepCtx(ctx, w.o.phase/2)
		w.soak.rateMul.Store(100)
		return nil
	case "hostile":
		res, err := w.hostile(ctx)
		w.soak.hostileResult = res
		return err
	}
	return fmt.Errorf("unknown fault %q", f)
}

// soakHostile is what became of the hostile connections.
type soakHostile struct {
	Silent, SilentCut int // upgraded, then never read nor sent anything
	Slow, SlowCut     int // a request line, then nothing
}

// hostile opens half the hostile connections as WebSocket clients (of org
// members, so they are sent org events) that never read nor answer pings,
// and half as HTTP requests that never finish their headers, spread over
// the instances; after a phase, it counts those the server has cut.
func (w *syncWorld) hostile(ctx context.Context) (*soakHostile, error) {
	res := &soakHostile{}
	var conns []net.Conn
	var slow []bool
	for i := range w.o.hostile {
		base := strings.TrimPrefix(w.pick(), "http://")
		if i%2 == 0 {
			tok, err := auth.Sign(jwtSecret, w.members[i%len(w.members)], nil, time.Hour)
			if err != nil {
				return nil, err
			}
			c, _, err := gws.NewClient(&gws.BuiltinEventHandler{}, &gws.ClientOption{Addr: "ws://" + base + "/socket/websocket",
				RequestHeader: http.Header{"Authorization": {"Bearer " + tok}}, HandshakeTimeout: 5 * time.Second})
			if err != nil {
				continue
			}
			conns, slow = append(conns, c.NetConn()), append(slow, false) // no ReadLoop: never reads, never pongs
			res.Silent++
			continue
		}
		c, err := net.DialTimeout("tcp", base, 5*time.Second)
		if err != nil {
			continue
		}
		_, _ = io.WriteString(c, "GET /socket/websocket HTTP/1.1\r\nHost: "+base+"\r\n")
		conns, slow = append(conns, c), append(slow, true)
		res.Slow++
	}
	logf("%s: %d silent WebSocket clients and %d unfinished requests open", w.name, res.Silent, res.Slow)
	// Long enough for the server's bounds: 3 ping intervals (2 s here)
	// for a silent client, http.read_header_timeout (10 s) for a request.
	sleepCtx(ctx, max(w.o.phase, 15*time.Second))
	for i, c := range conns {
		if closedByPeer(c) {
			if slow[i] {
				res.SlowCut++
			} else {
				res.SilentCut++
			}
		}
		c.Close()
	}
	return res, nil
}

// closedByPeer reads what c holds until the peer's close (true) or a
// short silence (false).
func closedByPeer(c net.Conn) bool {
	buf := make([]byte, 64<<10)
	for {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// reportSoak writes the soak's SLO table.
func reportSoak(rp *reporter, r *syncResult, o syncOptions) {
	if r == nil {
		return
	}
	s := report.Section{
		Title: "A production day (soak)",
		Method: fmt.Sprintf(`%d `+"`signalctl serve`"+` processes on a durable PostgreSQL 15 primary with a synchronous
streaming replica (the database URL names both hosts, target_session_attrs=read-write) and the in-process
broker keeping its log on disk. %s devices (internal/device, the reference client) for %s recipients, %.0f %% of
them dropping and resuming on a random instance every 10 s; %s msg/s (two recipients each) and an org event to
%d members every %d messages; a state change per 20 messages and %.0f inbox reads/s through REST. Faults, %s
apart: %s (kill: SIGKILL of one instance, back 3 s later; rolling: SIGTERM and restart of each instance in turn;
failover: the primary SIGKILLed, the replica promoted 2 s later; broker-restart: the broker down 3 s; burst:
%.0f× the rate for half a phase; hostile: %d connections held at least 15 s, half WebSocket clients that never read
nor answer pings (the soak pings every 2 s), half requests that never finish their headers). At the end every device is compared with the database and every row with what was produced.`,
			o.instances, report.Thousands(int64(r.Devices)), report.Thousands(int64(r.Devices/2)), o.dropPct, report.Thousands(int64(r.Rate)),
			o.members, o.orgEvery, o.inboxRate, o.phase, strings.Join(o.faults, ", "), o.burst, o.hostile),
	}
	zero := func(fig string, n int) {
		s.Rows = append(s.Rows, report.Row{Figure: fig, Value: float64(n), Target: "0", Met: report.Bool(n == 0)})
	}
	zero("rows lost (of "+report.Thousands(int64(r.RowsExpected))+")", r.RowsLost)
	zero("rows duplicated", r.RowsDuplicated)
	zero("notifications and changes missed by devices", r.Missed)
	zero("devices with count drift", r.Drift)
	zero("skipped positions seen by devices", r.Gaps)
	for i, p := range r.Phases {
		row := report.Row{Figure: fmt.Sprintf("e2e p99, %s (p50 %s)", p.Name, report.FormatValue(p.Latency.P50, "ms")), Value: p.Latency.P99, Unit: "ms"}
		if i == 0 {
			row.Target, row.Met = "≤ 100 ms", report.AtMost(p.Latency.P99, 100)
		}
		s.Rows = append(s.Rows, row)
	}
	if r.InboxReads != nil {
		s.Rows = append(s.Rows, report.Row{Figure: fmt.Sprintf("inbox read p99 (p50 %s; %d reads, %d not 200)",
			report.FormatValue(r.InboxReads.Latency.P50, "ms"), r.InboxReads.Reads, r.InboxReads.Errors), Value: r.InboxReads.Latency.P99, Unit: "ms"})
	}
	for _, f := range r.Faults {
		s.Rows = append(s.Rows, report.Row{Figure: fmt.Sprintf("every device live again after %s (PostgreSQL %.2f cores meanwhile)", f.Name, f.PGCores),
			Value: f.LiveSec, Unit: "s"})
	}
	for i, rss := range r.PeakRSSMiB {
		cpu := 0.0
		if i < len(r.InstanceCores) {
			cpu = r.InstanceCores[i]
		}
		s.Rows = append(s.Rows, report.Row{Figure: fmt.Sprintf("instance %d: peak RSS (%.2f cores on average)", i, cpu), Value: rss, Unit: "MiB"})
	}
	s.Rows = append(s.Rows, report.Row{Figure: "PostgreSQL (primary and replica): cores on average", Value: r.PGCores})
	notes := []string{fmt.Sprintf("Messages %s, state changes %s, sessions %s, changes applied %s, resets %d; every device caught up %.1f s after the traffic stopped. Load average at the end: %s.",
		report.Thousands(int64(r.Messages)), report.Thousands(int64(r.StateChanges)), report.Thousands(int64(r.Sessions)),
		report.Thousands(int64(r.ChangesApplied)), r.Resets, r.ConvergeSec, r.Load)}
	for _, p := range r.Phases[1:] {
		notes = append(notes, fmt.Sprintf("%s: e2e back under twice the calm p99 after %.0f s.", p.Name, p.RecoverSec))
	}
	if h := r.Hostile; h != nil {
		notes = append(notes, fmt.Sprintf("Hostile: %d of %d silent WebSocket clients and %d of %d unfinished requests cut by the server within a phase.",
			h.SilentCut, h.Silent, h.SlowCut, h.Slow))
	}
	if len(r.Examples) > 0 {
		notes = append(notes, "Differences: "+strings.Join(r.Examples, " | "))
	}
	s.Notes = notes
	rp.rep.Sections = append(rp.rep.Sections, s)
	bad := r.correctness()
	rp.rep.Targets = append(rp.rep.Targets, report.Target{Goal: "a production day: 0 rows lost or duplicated, 0 changes missed, 0 count drift; calm e2e p99 ≤ 100 ms",
		Measured: fmt.Sprintf("correctness: %s; calm e2e p99 %s", map[bool]string{true: "all 0", false: bad}[bad == ""], report.FormatValue(r.Phases[0].Latency.P99, "ms")),
		Met:      report.Bool(bad == "" && r.Phases[0].Latency.P99 <= 100)})
}

// readCPU notes the CPU seconds of an instance's process; w.mu is held.
func (w *syncWorld) readCPU(pid, slot int) {
	if w.cpuSeen == nil {
		w.cpuSeen, w.slotOf = map[int]float64{}, map[int]int{}
	}
	if c := cpuSeconds(pid); !math.IsNaN(c) {
		w.cpuSeen[pid] = max(w.cpuSeen[pid], c)
		w.slotOf[pid] = slot
	}
}

// instanceCores is each instance slot's CPU over d (every process that
// held the slot: restarts included), in cores.
func (w *syncWorld) instanceCores(d time.Duration) []float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]float64, len(w.instances))
	for pid, slot := range w.slotOf {
		out[slot] += w.cpuSeen[pid] / d.Seconds()
	}
	return out
}

// lagReplica stops the replica's WAL receiver for o.lag (the primary goes
// on committing: asynchronous); resume lets it go, once the primary died.
func (w *syncWorld) lagReplica(ctx context.Context) (resume func(), err error) {
	var recv int
	for _, pid := range clusterPIDs(w.soak.replica) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(b), "walreceiver") {
			recv = pid
		}
	}
	if recv == 0 {
		return nil, errors.New("no walreceiver process on the replica")
	}
	if err := syscall.Kill(recv, syscall.SIGSTOP); err != nil {
		return nil, err
	}
	logf("%s: the replica's WAL receiver is stopped for %s", w.name, w.o.lag)
	sleepCtx(ctx, w.o.lag)
	return func() { _ = syscall.Kill(recv, syscall.SIGCONT) }, nil
}
