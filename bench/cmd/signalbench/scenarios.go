package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/signal-notify/signal/bench/report"
)

// latencyRun is produce → WebSocket receive at one steady rate.
type latencyRun struct {
	Name     string         `json:"name"`
	Rate     float64        `json:"rate"`
	Sent     int            `json:"sent"`     // messages produced, warm-up included
	Expected int            `json:"expected"` // frames expected after the warm-up
	Received int            `json:"received"` // of those, frames received
	Lat      report.Latency `json:"latencyMs"`
	// Cores is the average CPU use during the run, by process group.
	Cores   map[string]float64 `json:"cores,omitempty"`
	Samples []float64          `json:"-"`
}

type e2eResult struct {
	Recipients int          `json:"recipients"`
	Runs       []latencyRun `json:"runs"`
}

// recipientsOf gives message i two distinct recipients among prefix0…prefix(n-1).
func recipientsOf(prefix string, n int) func(i int) [2]string {
	return func(i int) [2]string {
		a := i % n
		b := (a + 1 + (i/n)%(n-1)) % n
		return [2]string{prefix + strconv.Itoa(a), prefix + strconv.Itoa(b)}
	}
}

// measureRate produces at rate for warm-up + duration and collects the
// latencies of the frames sent after the warm-up, from each pool.
func measureRate(ctx context.Context, e *env, prod *pacedProducer, rate float64, recipients func(int) [2]string, pools ...*pool) ([]latencyRun, error) {
	e.checkpoint(ctx)
	for _, p := range pools {
		p.takeNotif()
	}
	start := time.Now()
	cutoff := start.Add(e.cfg.warmup).UnixNano()
	sent, measured, err := prod.run(ctx, rate, e.cfg.warmup+e.cfg.duration, cutoff, recipients)
	if err != nil {
		return nil, fmt.Errorf("produce at %.0f/s: %w", rate, err)
	}
	// Wait for the backlog to drain: every pool has every frame, or 20 s.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for _, p := range pools {
			if p.notifCount() < 2*sent {
				all = false
			}
		}
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond)
	var out []latencyRun
	for _, p := range pools {
		run := latencyRun{Name: p.o.name, Rate: rate, Sent: sent, Expected: 2 * measured}
		for _, s := range p.takeNotif() {
			if s.s < cutoff {
				continue
			}
			run.Samples = append(run.Samples, float64(s.r-s.s)/1e6)
		}
		run.Received = len(run.Samples)
		run.Lat = report.Summarize(run.Samples)
		logf("%s at %.0f msg/s: %d of %d frames, p50 %.2f ms, p99 %.2f ms, max %.1f ms",
			p.o.name, rate, run.Received, run.Expected, run.Lat.P50, run.Lat.P99, run.Lat.Max)
		out = append(out, run)
	}
	return out, nil
}

func runE2E(ctx context.Context, e *env) (*e2eResult, error) {
	broker, err := startBroker(e, topic)
	if err != nil {
		return nil, err
	}
	dbURL, err := e.database(ctx, "bench_e2e")
	if err != nil {
		return nil, err
	}
	s, err := e.serve(ctx, serveOpts{name: "e2e", dbURL: dbURL, broker: broker, extra: []string{"APP_ENV_KAFKA_GROUP_ID=bench-e2e"}})
	if err != nil {
		return nil, err
	}
	defer s.stop()
	n := e.cfg.recipients
	p, st, err := startPool(ctx, e, poolOpts{name: "e2e", url: s.wsURL(), n: n, perProc: 5000, minProcs: 2, prefix: "r"})
	if err != nil {
		return nil, err
	}
	defer p.close()
	if st.Fail > 0 {
		return nil, fmt.Errorf("e2e: %d clients failed to connect: %s", st.Fail, st.Err)
	}
	prod, err := newPacedProducer(broker)
	if err != nil {
		return nil, err
	}
	defer prod.close()
	res := &e2eResult{Recipients: n}
	for i, rate := range e.cfg.rates {
		if i == len(e.cfg.rates)-1 {
			s.profile(ctx, e.cfg.duration, fmt.Sprintf("e2e-%.0f", rate))
		}
		meter := newCPUMeter(map[string]func() []int{
			"signalctl serve":            func() []int { return []int{s.pid()} },
			"PostgreSQL":                 e.postgresPIDs,
			"harness (broker, producer)": func() []int { return []int{os.Getpid()} },
			"client processes":           p.pids,
		})
		runs, err := measureRate(ctx, e, prod, rate, recipientsOf("r", n), p)
		if err != nil {
			return res, err
		}
		runs[0].Cores = meter.cores()
		logf("e2e at %.0f msg/s: busy cores %s", rate, coresText(runs[0].Cores))
		runs[0].Name = fmt.Sprintf("%s msg/s", report.Thousands(int64(rate)))
		res.Runs = append(res.Runs, runs[0])
		_ = sleepCtx(ctx, 2*time.Second)
	}
	return res, nil
}

// broadcastPhase is a series of broadcasts to every client.
type broadcastPhase struct {
	Name       string         `json:"name"`
	Broadcasts int            `json:"broadcasts"` // measured, warm-up excluded
	Receivers  int            `json:"receivers"`  // clients counted, per broadcast
	Expected   int            `json:"expected"`
	Received   int            `json:"received"`
	Lat        report.Latency `json:"latencyMs"`
	// LastMs is, per broadcast, when the last counted client had it.
	LastMs []float64 `json:"lastMs"`
	// P99s is, per broadcast, the p99 over the counted clients.
	P99s []float64 `json:"p99s"`
	// RoundP99s is the pooled p99 of each round merged in (slow scenario).
	RoundP99s []float64 `json:"roundP99s,omitempty"`
	// CPU time per measured broadcast (warm-up and pauses included, spread
	// over the measured ones) of the server and of all client processes.
	ServerCPUms  float64   `json:"serverCpuMs"`
	ClientsCPUms float64   `json:"clientsCpuMs"`
	HarnessCPUms float64   `json:"harnessCpuMs"`
	Samples      []float64 `json:"-"`
}

type fanoutResult struct {
	Clients        int            `json:"clients"`
	Connected      int            `json:"connected"`
	Failed         int            `json:"failed"`
	ConnectErr     string         `json:"connectErr,omitempty"`
	ConnectSeconds float64        `json:"connectSeconds"`
	Processes      int            `json:"processes"`
	RSSBaseKiB     float64        `json:"rssBaseKiB"`
	RSSIdleKiB     float64        `json:"rssIdleKiB"`
	PerConnKiB     float64        `json:"perConnKiB"`
	Broadcast      broadcastPhase `json:"broadcast"`
	ClosedByServer int            `json:"closedByServer"`
	CloseCodes     map[int]int    `json:"closeCodes,omitempty"`
}

type slowResult struct {
	Clients   int            `json:"clients"`
	Slow      int            `json:"slow"`
	FillBytes int            `json:"fillBytes"` // sent to each slow client before each phase
	Rounds    int            `json:"rounds"`
	Baseline  broadcastPhase `json:"baseline"`
	WithSlow  broadcastPhase `json:"withSlow"`
	// Ratio: others' p99 with slow clients / the same clients' p99 before.
	Ratio          float64     `json:"ratio"`
	ClosedByServer int         `json:"closedByServer"`
	CloseCodes     map[int]int `json:"closeCodes,omitempty"`
}

// runBroadcasts is the fan-out scenario and, with slow, the slow-client
// one on the same server and clients: 15,000 clients connected, the
// server's memory per idle connection, then broadcasts; then, with slow,
// a baseline phase and a phase where 5 % of the clients stop reading.
func runBroadcasts(ctx context.Context, e *env, withFanout, withSlow bool) (*fanoutResult, *slowResult, error) {
	broker, err := startBroker(e, topic)
	if err != nil {
		return nil, nil, err
	}
	dbURL, err := e.database(ctx, "bench_fanout")
	if err != nil {
		return nil, nil, err
	}
	s, err := e.serve(ctx, serveOpts{name: "fanout", dbURL: dbURL, broker: broker, extra: []string{"APP_ENV_KAFKA_GROUP_ID=bench-fanout"}})
	if err != nil {
		return nil, nil, err
	}
	defer s.stop()
	fr := &fanoutResult{Clients: e.cfg.clients}
	if fr.RSSBaseKiB, err = s.settledRSS(ctx, 3*time.Second); err != nil {
		return nil, nil, err
	}
	slowEvery := 0
	if withSlow {
		slowEvery = max(2, int(100/e.cfg.slowPct+0.5))
	}
	p, st, err := startPool(ctx, e, poolOpts{name: "fanout", url: s.wsURL(), n: e.cfg.clients, perProc: e.cfg.perProc, minProcs: 3, prefix: "f", slowEvery: slowEvery})
	if err != nil {
		return nil, nil, err
	}
	defer p.close()
	fr.Connected, fr.Failed, fr.ConnectErr, fr.ConnectSeconds, fr.Processes = st.OK, st.Fail, st.Err, st.Elapsed.Seconds(), len(p.procs)
	if fr.Connected == 0 {
		return fr, nil, fmt.Errorf("fanout: no client connected: %s", st.Err)
	}
	if fr.RSSIdleKiB, err = s.settledRSS(ctx, 5*time.Second); err != nil {
		return nil, nil, err
	}
	fr.PerConnKiB = (fr.RSSIdleKiB - fr.RSSBaseKiB) / float64(fr.Connected)
	logf("fanout: RSS %.0f KiB with no client, %.0f KiB with %d idle clients: %.2f KiB per connection",
		fr.RSSBaseKiB, fr.RSSIdleKiB, fr.Connected, fr.PerConnKiB)

	b := &broadcaster{s: s, p: p, k: e.cfg.broadcasts}
	all := func(int) bool { return true }
	others := func(idx int) bool { return !p.isSlow(idx) }
	s.profile(ctx, 8*time.Second, "fanout")
	if fr.Broadcast, err = b.phase(ctx, report.Thousands(int64(fr.Connected))+" clients", all, fr.Connected); err != nil {
		return fr, nil, err
	}
	fr.ClosedByServer, fr.CloseCodes = p.closedByServer()
	if !withSlow {
		return fr, nil, nil
	}
	sr := &slowResult{Clients: fr.Connected, Slow: p.slowCount(), FillBytes: fillFrames * fillBytes, Rounds: e.cfg.slowRounds}
	// Rounds alternate the two conditions, so that neither gets the
	// advantage of running later (a warmer server, a grown heap). Round 0
	// is a warm-up: the first large frames change the state of the server
	// and of the connections, and its first phase is often an outlier.
	for round := 0; round <= e.cfg.slowRounds; round++ {
		if err := b.fill(ctx); err != nil {
			return fr, nil, err
		}
		ph, err := b.phase(ctx, fmt.Sprintf("all reading, round %d", round), others, fr.Connected-sr.Slow)
		if err != nil {
			return fr, nil, err
		}
		if round > 0 {
			sr.Baseline = mergePhase(sr.Baseline, ph, "all reading")
		}
		p.command("stall")
		_ = sleepCtx(ctx, 300*time.Millisecond)
		if err := b.fill(ctx); err != nil {
			return fr, nil, err
		}
		name := fmt.Sprintf("%g %% not reading", e.cfg.slowPct)
		if ph, err = b.phase(ctx, fmt.Sprintf("%s, round %d", name, round), others, fr.Connected-sr.Slow); err != nil {
			return fr, sr, err
		}
		if round > 0 {
			sr.WithSlow = mergePhase(sr.WithSlow, ph, name)
		}
		p.command("resume")
		_ = sleepCtx(ctx, 3*time.Second) // the slow clients read their backlog
	}
	sr.Ratio = report.Ratio(sr.WithSlow.Lat.P99, sr.Baseline.Lat.P99)
	sr.ClosedByServer, sr.CloseCodes = p.closedByServer()
	logf("slow: others' p99 %.1f ms all reading, %.1f ms with %d clients not reading (%.2f×); %d connections closed by the server",
		sr.Baseline.Lat.P99, sr.WithSlow.Lat.P99, sr.Slow, sr.Ratio, sr.ClosedByServer)
	if !withFanout {
		fr = nil
	}
	return fr, sr, nil
}

// mergePhase pools the samples of two runs of the same condition.
func mergePhase(a, b broadcastPhase, name string) broadcastPhase {
	if a.Broadcasts == 0 {
		b.Name = name
		b.RoundP99s = []float64{b.Lat.P99}
		return b
	}
	n := float64(a.Broadcasts + b.Broadcasts)
	m := broadcastPhase{Name: name, Broadcasts: a.Broadcasts + b.Broadcasts, Receivers: b.Receivers,
		Expected: a.Expected + b.Expected, Received: a.Received + b.Received,
		LastMs:       append(append([]float64(nil), a.LastMs...), b.LastMs...),
		P99s:         append(append([]float64(nil), a.P99s...), b.P99s...),
		RoundP99s:    append(append([]float64(nil), a.RoundP99s...), b.Lat.P99),
		ServerCPUms:  (a.ServerCPUms*float64(a.Broadcasts) + b.ServerCPUms*float64(b.Broadcasts)) / n,
		ClientsCPUms: (a.ClientsCPUms*float64(a.Broadcasts) + b.ClientsCPUms*float64(b.Broadcasts)) / n,
		HarnessCPUms: (a.HarnessCPUms*float64(a.Broadcasts) + b.HarnessCPUms*float64(b.Broadcasts)) / n,
		Samples:      append(append([]float64(nil), a.Samples...), b.Samples...)}
	m.Lat = report.Summarize(m.Samples)
	return m
}

const (
	fillFrames = 12
	fillBytes  = 32 << 10
)

// broadcaster posts broadcasts and collects their receptions.
type broadcaster struct {
	s    *server
	p    *pool
	k    int // measured broadcasts per phase
	next int
}

// phase sends one warm-up and k measured broadcasts, one after the other
// once the previous one was received; counted says which clients count.
func (b *broadcaster) phase(ctx context.Context, name string, counted func(idx int) bool, want int) (broadcastPhase, error) {
	ph := broadcastPhase{Name: name, Broadcasts: b.k, Receivers: want}
	srv0, cl0, h0 := cpuSeconds(b.s.pid()), b.p.cpuSeconds(), cpuSeconds(os.Getpid())
	for i := 0; i <= b.k; i++ {
		b.next++
		id := b.next
		body, _ := json.Marshal(map[string]any{"topic": topicBroadcast, "data": map[string]int{"id": id}})
		t0 := time.Now()
		if err := post(ctx, b.s.url()+"/socket/websocket/clients/broadcast", body); err != nil {
			return ph, err
		}
		recvs := b.p.waitBroadcast(ctx, id, want, counted, 30*time.Second)
		if i == 0 {
			_ = sleepCtx(ctx, 300*time.Millisecond)
			continue // warm-up
		}
		last := 0.0
		var one []float64
		for _, r := range recvs {
			if !counted(r.idx) {
				continue
			}
			ms := float64(r.r-t0.UnixNano()) / 1e6
			one = append(one, ms)
			last = max(last, ms)
		}
		ph.Samples = append(ph.Samples, one...)
		ph.LastMs = append(ph.LastMs, last)
		ph.P99s = append(ph.P99s, report.Summarize(one).P99)
		_ = sleepCtx(ctx, 300*time.Millisecond)
	}
	ph.ServerCPUms = (cpuSeconds(b.s.pid()) - srv0) * 1000 / float64(b.k)
	ph.ClientsCPUms = (b.p.cpuSeconds() - cl0) * 1000 / float64(b.k)
	ph.HarnessCPUms = (cpuSeconds(os.Getpid()) - h0) * 1000 / float64(b.k)
	ph.Expected = want * b.k
	ph.Received = len(ph.Samples)
	ph.Lat = report.Summarize(ph.Samples)
	logf("broadcast %s: %d of %d deliveries, p50 %.1f ms, p99 %.1f ms, max %.1f ms; CPU per broadcast: server %.0f ms, clients %.0f ms, harness %.0f ms",
		name, ph.Received, ph.Expected, ph.Lat.P50, ph.Lat.P99, ph.Lat.Max, ph.ServerCPUms, ph.ClientsCPUms, ph.HarnessCPUms)
	return ph, nil
}

// fill sends large frames to the slow-capable clients' room, so that the
// ones that stopped reading have full socket buffers and a queue.
func (b *broadcaster) fill(ctx context.Context) error {
	body, _ := json.Marshal(map[string]any{"topic": topicFill, "data": strings.Repeat("x", fillBytes)})
	u := b.s.url() + "/socket/websocket/clients/rooms/" + url.PathEscape(slowRoom) + "/send"
	for i := 0; i < fillFrames; i++ {
		if err := post(ctx, u, body); err != nil {
			return err
		}
		_ = sleepCtx(ctx, 20*time.Millisecond)
	}
	return sleepCtx(ctx, 2*time.Second)
}

func post(ctx context.Context, u string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		return fmt.Errorf("POST %s: %d %s", u, resp.StatusCode, msg.String())
	}
	return nil
}

// clusterRun is one rate of the cluster scenario.
type clusterRun struct {
	Rate  float64    `json:"rate"`
	Local latencyRun `json:"local"` // clients on A, the consuming instance
	Cross latencyRun `json:"cross"` // clients on B: relayed through PostgreSQL
}

type clusterResult struct {
	Clients int          `json:"clients"` // per instance
	Runs    []clusterRun `json:"runs"`
	// Baseline: the same with -baseline-bin, in the same run.
	BaselineBin string       `json:"baselineBin,omitempty"`
	Baseline    []clusterRun `json:"baseline,omitempty"`
}

// runCluster: two serve processes on one database. A consumes the topic;
// B consumes another, empty topic (as internal/e2e/cluster_test.go does),
// so every notification its clients get was consumed by A and relayed.
// Every recipient has a client on each instance: both are measured in the
// same run, at each rate of -cluster-rates (where the cross-instance p99
// bends is the relay's ceiling). With -baseline-bin the whole scenario runs
// again with that binary.
func runCluster(ctx context.Context, e *env) (*clusterResult, error) {
	res := &clusterResult{Clients: e.cfg.clusterClients}
	var err error
	if res.Runs, err = runClusterWith(ctx, e, e.bin, "cluster"); err != nil {
		return res, err
	}
	if b := e.cfg.baselineBin; b != "" {
		res.BaselineBin = b
		if res.Baseline, err = runClusterWith(ctx, e, b, "cluster_baseline"); err != nil {
			return res, err
		}
	}
	return res, nil
}

func runClusterWith(ctx context.Context, e *env, bin, name string) ([]clusterRun, error) {
	const unused = "bench-unused"
	broker, err := startBroker(e, topic, unused)
	if err != nil {
		return nil, err
	}
	dbURL, err := e.databaseFor(ctx, "bench_"+name, bin)
	if err != nil {
		return nil, err
	}
	defer e.dropDatabase("bench_" + name)
	a, err := e.serve(ctx, serveOpts{name: name + "-a", bin: bin, dbURL: dbURL, broker: broker, extra: []string{"APP_ENV_KAFKA_GROUP_ID=bench-cluster"}})
	if err != nil {
		return nil, err
	}
	defer a.stop()
	bs, err := e.serve(ctx, serveOpts{name: name + "-b", bin: bin, dbURL: dbURL, broker: broker,
		extra: []string{"APP_ENV_KAFKA_GROUP_ID=bench-cluster-b", "SIGNAL_KAFKA_TOPIC=" + unused}})
	if err != nil {
		return nil, err
	}
	defer bs.stop()
	n := e.cfg.clusterClients
	pa, st, err := startPool(ctx, e, poolOpts{name: "instance A (local)", url: a.wsURL(), n: n, minProcs: 1, prefix: "c", srcBase: 2})
	if err != nil {
		return nil, err
	}
	defer pa.close()
	if st.Fail > 0 {
		return nil, fmt.Errorf("cluster: %d clients failed on A: %s", st.Fail, st.Err)
	}
	pb, st, err := startPool(ctx, e, poolOpts{name: "instance B (cross)", url: bs.wsURL(), n: n, minProcs: 1, prefix: "c", srcBase: 3})
	if err != nil {
		return nil, err
	}
	defer pb.close()
	if st.Fail > 0 {
		return nil, fmt.Errorf("cluster: %d clients failed on B: %s", st.Fail, st.Err)
	}
	prod, err := newPacedProducer(broker)
	if err != nil {
		return nil, err
	}
	defer prod.close()
	var out []clusterRun
	for _, rate := range e.cfg.clusterRates {
		logf("%s (%s) at %.0f msg/s", name, bin, rate)
		runs, err := measureRate(ctx, e, prod, rate, recipientsOf("c", n), pa, pb)
		if err != nil {
			return out, err
		}
		out = append(out, clusterRun{Rate: rate, Local: runs[0], Cross: runs[1]})
		_ = sleepCtx(ctx, 2*time.Second)
	}
	return out, nil
}

// coresText prints a cpuMeter result, largest first.
func coresText(c map[string]float64) string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return c[names[i]] > c[names[j]] })
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.2f", n, c[n])
	}
	return strings.Join(parts, ", ")
}
