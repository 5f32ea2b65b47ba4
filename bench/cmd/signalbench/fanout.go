package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"time"

	"github.com/signal-notify/signal/bench/report"
)

// The fanout scenario, and its slow part on the same server and clients:
// 15,000 clients, the server's memory per idle connection, broadcasts to
// all of them; then (slow) rounds where 5 % of them stop reading, and the
// others' latency against rounds where all read.
func init() {
	register(&scenario{name: "fanout", also: []string{"slow"}, order: 30,
		summary: "broadcast delivery to 15,000 clients; resident memory per idle connection; " +
			"slow: the same with 5 % of the clients not reading: the others' p99",
		setup: func(fs *flag.FlagSet) run {
			x := &fanoutRun{}
			fs.IntVar(&x.clients, "clients", 15000, "fanout, slow: connected clients")
			fs.Float64Var(&x.slowPct, "slow-pct", 5, "slow: percentage of clients that stop reading")
			fs.IntVar(&x.slowRounds, "slow-rounds", 3, "slow: rounds of (all reading, some not reading) phases")
			return x
		}})
}

// Targets of the issue, on this 2-core machine.
const (
	targetFanoutP99   = 100.0
	targetPerConnKiB  = 6.0
	targetSlowRaise   = 1.10
	targetFanoutCount = 15000
)

type fanoutRun struct {
	clients    int
	slowPct    float64
	slowRounds int
	fanout     *fanoutResult
	slow       *slowResult
}

func (x *fanoutRun) check() error {
	switch {
	case x.clients < 1:
		return errors.New("-clients must be positive")
	case x.slowPct <= 0 || x.slowPct > 50:
		return errors.New("-slow-pct must be in (0, 50]")
	case x.slowRounds < 1:
		return errors.New("-slow-rounds must be at least 1")
	}
	return nil
}

func (x *fanoutRun) measure(ctx context.Context, e *env) (err error) {
	x.fanout, x.slow, err = x.run(ctx, e, e.cfg.has("fanout"), e.cfg.has("slow"))
	return err
}

func (x *fanoutRun) results() map[string]any {
	return map[string]any{"fanout": x.fanout, "slow": x.slow}
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
func (x *fanoutRun) run(ctx context.Context, e *env, withFanout, withSlow bool) (*fanoutResult, *slowResult, error) {
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
	fr := &fanoutResult{Clients: x.clients}
	if fr.RSSBaseKiB, err = s.settledRSS(ctx, 3*time.Second); err != nil {
		return nil, nil, err
	}
	slowEvery := 0
	if withSlow {
		slowEvery = max(2, int(100/x.slowPct+0.5))
	}
	p, st, err := startPool(ctx, e, poolOpts{name: "fanout", url: s.wsURL(), n: x.clients, perProc: e.cfg.perProc, minProcs: 3, prefix: "f", slowEvery: slowEvery})
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
	sr := &slowResult{Clients: fr.Connected, Slow: p.slowCount(), FillBytes: fillFrames * fillBytes, Rounds: x.slowRounds}
	// Rounds alternate the two conditions, so that neither gets the
	// advantage of running later (a warmer server, a grown heap). Round 0
	// is a warm-up: the first large frames change the state of the server
	// and of the connections, and its first phase is often an outlier.
	for round := 0; round <= x.slowRounds; round++ {
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
		name := fmt.Sprintf("%g %% not reading", x.slowPct)
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

func (x *fanoutRun) report(rp *reporter) {
	if r := x.fanout; r != nil {
		connected := fmt.Sprintf("%s of %s clients connected", report.Thousands(int64(r.Connected)), report.Thousands(int64(r.Clients)))
		s := report.Section{
			Title: "Fan-out",
			Method: fmt.Sprintf(`%s clients are connected from %d client processes (at most %s each), each dialling from its
own loopback source address (127.0.0.2, .3, …), to one `+"`signalctl serve`"+` process. Resident memory is
the server's VmRSS (/proc/<pid>/status): the smallest reading over 3 s after 3 s of rest with no
client, and over 5 s after 5 s of rest with every client connected and idle; per connection =
(idle − empty) / connected. Then one warm-up and %d measured broadcasts (POST
/socket/websocket/clients/broadcast), each sent once the previous one reached every client: latency
= a client's receive time − the time just before the POST, over all clients and broadcasts.`,
				report.Thousands(int64(r.Clients)), r.Processes, report.Thousands(int64(rp.cfg.perProc)), rp.cfg.broadcasts),
			Rows: []report.Row{
				{Figure: "broadcast p50", Value: r.Broadcast.Lat.P50, Unit: "ms"},
				{Figure: "broadcast p99", Value: r.Broadcast.Lat.P99, Unit: "ms", Target: fmt.Sprintf("≤ %.0f ms", targetFanoutP99),
					Met: fanoutMet(r)},
				{Figure: "broadcast max", Value: r.Broadcast.Lat.Max, Unit: "ms"},
				{Figure: "resident memory per idle connection", Value: r.PerConnKiB, Unit: "KiB",
					Target: fmt.Sprintf("≤ %.0f KiB", targetPerConnKiB), Met: report.AtMost(r.PerConnKiB, targetPerConnKiB)},
				{Figure: "server RSS, no client", Value: r.RSSBaseKiB / 1024, Unit: "MiB"},
				{Figure: "server RSS, every client idle", Value: r.RSSIdleKiB / 1024, Unit: "MiB"},
				{Figure: "connect time of all clients", Value: r.ConnectSeconds, Unit: "s"},
				{Figure: "server CPU per broadcast", Value: r.Broadcast.ServerCPUms, Unit: "ms"},
				{Figure: "client processes' CPU per broadcast", Value: r.Broadcast.ClientsCPUms, Unit: "ms"},
				{Figure: "harness CPU per broadcast (collecting the reports)", Value: r.Broadcast.HarnessCPUms, Unit: "ms"},
			},
			Notes: []string{
				connected + ".",
				fmt.Sprintf("%s of %s deliveries received; last client per broadcast: %s ms.", report.Thousands(int64(r.Broadcast.Received)),
					report.Thousands(int64(r.Broadcast.Expected)), joinMs(r.Broadcast.LastMs)),
			},
		}
		if r.Failed > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("%d clients failed to connect; first error: %s", r.Failed, r.ConnectErr))
		}
		if r.ClosedByServer > 0 {
			s.Notes = append(s.Notes, "Connections closed by the server: "+closedText(r.ClosedByServer, r.CloseCodes)+".")
		}
		series := []report.Series{{Name: r.Broadcast.Name, MS: r.Broadcast.Samples}}
		if sr := x.slow; sr != nil {
			series = append(series, report.Series{Name: "others, all reading", MS: sr.Baseline.Samples},
				report.Series{Name: "others, " + sr.WithSlow.Name, MS: sr.WithSlow.Samples})
		}
		rp.chart(&s, "fanout-latency", func(p string) error { return report.CDFChart(p, "Broadcast delivery latency", series) })
		rp.rep.Sections = append(rp.rep.Sections, s)
		rp.rep.Targets = append(rp.rep.Targets,
			report.Target{Goal: fmt.Sprintf("%s-client broadcast p99 ≤ %.0f ms", report.Thousands(targetFanoutCount), targetFanoutP99),
				Measured: report.FormatValue(r.Broadcast.Lat.P99, "ms") + " (" + connected + ")", Met: fanoutMet(r)},
			report.Target{Goal: fmt.Sprintf("≤ %.0f KiB resident memory per idle connection", targetPerConnKiB),
				Measured: report.FormatValue(r.PerConnKiB, "KiB"), Met: report.AtMost(r.PerConnKiB, targetPerConnKiB)})
	}
	if r := x.slow; r != nil {
		s := report.Section{
			Title: "Slow clients",
			Method: fmt.Sprintf(`The same %s clients; %s of them (1 in %s) are in a room that receives %d frames of %s KiB
before each phase. Phase A: everyone reads; %d measured broadcasts after a warm-up. Phase B: those
clients stop reading (their read loop blocks, with a 4 KiB receive buffer, so the kernel buffers fill
and the server's queue for them grows), the same frames are sent, and the same broadcasts; then they
read again and drain their backlog. One warm-up round, then %d rounds of A then B. The figure is the other clients' p99 over
the B phases; its reference is the same clients' p99 over the A phases, on the same server and
connections.`,
				report.Thousands(int64(r.Clients)), report.Thousands(int64(r.Slow)), ordinal(r.Clients, r.Slow), fillFrames, report.Thousands(fillBytes>>10), rp.cfg.broadcasts, r.Rounds),
			Rows: []report.Row{
				{Figure: "others' p99, " + r.WithSlow.Name, Value: r.WithSlow.Lat.P99, Unit: "ms", Reference: "all reading", RefValue: r.Baseline.Lat.P99,
					Target: fmt.Sprintf("< %.2f×", targetSlowRaise), Met: report.Below(r.Ratio, targetSlowRaise)},
				{Figure: "others' median of the per-broadcast p99s, " + r.WithSlow.Name, Value: report.Summarize(r.WithSlow.P99s).P50, Unit: "ms",
					Reference: "all reading", RefValue: report.Summarize(r.Baseline.P99s).P50},
				{Figure: "others' p50, " + r.WithSlow.Name, Value: r.WithSlow.Lat.P50, Unit: "ms", Reference: "all reading", RefValue: r.Baseline.Lat.P50},
				{Figure: "others' max, " + r.WithSlow.Name, Value: r.WithSlow.Lat.Max, Unit: "ms", Reference: "all reading", RefValue: r.Baseline.Lat.Max},
			},
			Notes: []string{fmt.Sprintf("p99 of each round: all reading %s ms; %s %s ms. Their spread is the noise of this figure on this machine: "+
				"a broadcast that meets a garbage collection or a scheduling hiccup moves a phase's p99; the median of the per-broadcast p99s is less sensitive to it.",
				joinMs(r.Baseline.RoundP99s), r.WithSlow.Name, joinMs(r.WithSlow.RoundP99s)),
				fmt.Sprintf("Deliveries to the others: %s of %s in the A phases, %s of %s in the B phases. Connections closed by the server: %s.",
					report.Thousands(int64(r.Baseline.Received)), report.Thousands(int64(r.Baseline.Expected)),
					report.Thousands(int64(r.WithSlow.Received)), report.Thousands(int64(r.WithSlow.Expected)), closedText(r.ClosedByServer, r.CloseCodes))},
		}
		if x.fanout == nil {
			rp.chart(&s, "slow-latency", func(p string) error {
				return report.CDFChart(p, "Broadcast delivery to the reading clients", []report.Series{
					{Name: "all reading", MS: r.Baseline.Samples}, {Name: r.WithSlow.Name, MS: r.WithSlow.Samples}})
			})
		} else {
			s.Notes = append(s.Notes, "The distributions are in the fan-out chart above.")
		}
		rp.rep.Sections = append(rp.rep.Sections, s)
		rp.rep.Targets = append(rp.rep.Targets, report.Target{Goal: "clients that do not read raise the others' p99 by less than 10 %",
			Measured: fmt.Sprintf("%s → %s: %s", report.FormatValue(r.Baseline.Lat.P99, "ms"), report.FormatValue(r.WithSlow.Lat.P99, "ms"), report.FormatRatio(r.Ratio)),
			Met:      report.Below(r.Ratio, targetSlowRaise)})
	}
}

func fanoutMet(r *fanoutResult) *bool {
	if r.Connected < targetFanoutCount {
		return nil // not the target's client count
	}
	return report.AtMost(r.Broadcast.Lat.P99, targetFanoutP99)
}

func ordinal(total, part int) string {
	if part == 0 {
		return "—"
	}
	return report.Thousands(int64(math.Round(float64(total) / float64(part))))
}
