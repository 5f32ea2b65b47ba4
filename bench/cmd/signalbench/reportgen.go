package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/signal-notify/signal/bench/report"
)

// Targets of the issue, on this 2-core machine.
const (
	targetCopyRatio   = 0.8
	targetSeedRatio   = 15
	targetE2ERate     = 2000
	targetE2EP99      = 25.0
	targetFanoutP99   = 100.0
	targetPerConnKiB  = 6.0
	targetSlowRaise   = 1.10
	targetFanoutCount = 15000
	targetInboxP99    = 5.0
	targetRemovalRate = 0.9
	targetFailoverMs  = 10000.0
	targetFirstPushMs = 50.0
	targetHostileRSS  = 1.2
	targetHostileP99  = 1.10
)

func buildReport(cfg *config, e *env, res *results, prefix string, took time.Duration, m report.Machine) *report.Report {
	m.Disk = diskOf(e.dir) + ", fsync on (durable cluster)"
	rep := &report.Report{
		Title:    "Signal benchmark " + cfg.date,
		Date:     time.Now(),
		Command:  "signalbench " + strings.Join(os.Args[1:], " "),
		Duration: took,
		Machine:  m,
	}
	chart := func(s *report.Section, name string, draw func(path string) error) {
		file := prefix + "-" + name + ".png"
		if err := draw(filepath.Join(cfg.out, file)); err != nil {
			logf("chart %s: %v", file, err)
			return
		}
		s.Charts = append(s.Charts, file)
	}

	if r := res.Ingest; r != nil {
		copyRatio := report.Ratio(r.SignalRate, r.CopyRate)
		seedRatio := report.Ratio(r.SignalRate, r.SeedRate)
		s := report.Section{
			Title: "Ingest",
			Method: fmt.Sprintf(`%s messages with 2 recipients each (%s rows) are produced to the in-process broker
while no consumer runs; then `+"`signalctl serve`"+` drains them with its defaults. The time runs from the
start of the first batch's transaction (the smallest created_at) to the moment the harness sees every
partition's committed offset at the end offset (kadm, polled every 10 ms); rows are committed before
offsets. Reference 1 loads the identical rows (built with the product's decoder, templates and id
derivation) with one pgx CopyFrom into an empty notifications table of the same schema in the same
cluster. Signal and COPY run %d times each, alternating, each on a fresh database dropped right
after; the best run of each is the figure. Reference 2 is the seed's shape on the first %s records:
per record BEGIN, one INSERT per row, COMMIT, then a synchronous offset commit. A CHECKPOINT precedes
each timed phase.`,
				report.Thousands(int64(r.Messages)), report.Thousands(int64(2*r.Messages)), len(r.SignalRuns), report.Thousands(int64(r.SeedMessages))),
			Rows: []report.Row{
				{Figure: "Signal ingest", Value: r.SignalRate, Unit: "msg/s", Reference: "raw COPY", RefValue: r.CopyRate,
					Target: fmt.Sprintf("≥ %.1f× COPY", targetCopyRatio), Met: report.AtLeast(copyRatio, targetCopyRatio)},
				{Figure: "Signal ingest", Value: r.SignalRate, Unit: "msg/s", Reference: "seed shape", RefValue: r.SeedRate,
					Target: fmt.Sprintf("≥ %d× seed shape", targetSeedRatio), Met: report.AtLeast(seedRatio, targetSeedRatio)},
				{Figure: "Signal ingest time", Value: r.SignalSeconds, Unit: "s"},
				{Figure: "Signal, from process start (group join included)", Value: r.SignalWallSeconds, Unit: "s"},
				{Figure: "raw COPY time", Value: r.CopySeconds, Unit: "s"},
			},
			Notes: []string{fmt.Sprintf("Rows stored by Signal: %s, dead letters: %d. Producing the backlog took %.1f s.",
				report.Thousands(int64(r.Rows)), r.DeadLetters, r.ProduceSeconds),
				"Every run, messages/s: Signal " + ratesText(r.SignalRuns) + "; COPY " + ratesText(r.CopyRuns) + ".",
				"Average busy cores while Signal drained the backlog (best run, of 2): " + coresText(r.SignalCores) + "."},
		}
		chart(&s, "ingest-throughput", func(p string) error {
			return report.BarChart(p, "Ingest throughput (messages/s, 2 rows each)", "messages/s", []report.Bar{
				{Label: "Signal", Value: r.SignalRate}, {Label: "raw COPY", Value: r.CopyRate}, {Label: "seed shape", Value: r.SeedRate}})
		})
		rep.Sections = append(rep.Sections, s)
		rep.Targets = append(rep.Targets,
			report.Target{Goal: fmt.Sprintf("ingest ≥ %.1f × the raw COPY rate", targetCopyRatio),
				Measured: fmt.Sprintf("%s vs %s: %s", report.FormatValue(r.SignalRate, "msg/s"), report.FormatValue(r.CopyRate, "msg/s"), report.FormatRatio(copyRatio)),
				Met:      report.AtLeast(copyRatio, targetCopyRatio)},
			report.Target{Goal: fmt.Sprintf("ingest ≥ %d × the one-at-a-time shape", targetSeedRatio),
				Measured: fmt.Sprintf("%s vs %s: %s", report.FormatValue(r.SignalRate, "msg/s"), report.FormatValue(r.SeedRate, "msg/s"), report.FormatRatio(seedRatio)),
				Met:      report.AtLeast(seedRatio, targetSeedRatio)})
	}

	if r := res.E2E; r != nil {
		s := report.Section{
			Title: "End to end",
			Method: fmt.Sprintf(`%s recipients are connected (one client each, in 2 client processes). A producer in the
harness sends messages with 2 recipients each at a steady rate, each carrying the time it was handed
to the Kafka client (data.sentNs); each client computes receive − send on the same clock. %s of
warm-up, then %s measured per rate; the frames of messages sent during the warm-up are not counted.
The reference of each rate is the target's rate figure where there is one.`,
				report.Thousands(int64(r.Recipients)), cfg.warmup, cfg.duration),
		}
		var series []report.Series
		for _, run := range r.Runs {
			row := func(fig string, v float64) report.Row {
				return report.Row{Figure: fmt.Sprintf("%s at %s msg/s", fig, report.Thousands(int64(run.Rate))), Value: v, Unit: "ms"}
			}
			p99 := row("p99", run.Lat.P99)
			if run.Rate == targetE2ERate {
				p99.Target = fmt.Sprintf("≤ %.0f ms", targetE2EP99)
				p99.Met = report.AtMost(run.Lat.P99, targetE2EP99)
				rep.Targets = append(rep.Targets, report.Target{Goal: fmt.Sprintf("end to end p99 ≤ %.0f ms at %s messages/s", targetE2EP99, report.Thousands(targetE2ERate)),
					Measured: report.FormatValue(run.Lat.P99, "ms"), Met: p99.Met})
			}
			s.Rows = append(s.Rows, row("p50", run.Lat.P50), p99, row("max", run.Lat.Max))
			s.Notes = append(s.Notes, fmt.Sprintf("%s msg/s: %s of %s frames received after the warm-up; average busy cores (of 2): %s.",
				report.Thousands(int64(run.Rate)), report.Thousands(int64(run.Received)), report.Thousands(int64(run.Expected)), coresText(run.Cores)))
			series = append(series, report.Series{Name: run.Name, MS: run.Samples})
		}
		chart(&s, "e2e-latency", func(p string) error { return report.CDFChart(p, "Produce → WebSocket receive", series) })
		rep.Sections = append(rep.Sections, s)
	}

	if r := res.Fanout; r != nil {
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
				report.Thousands(int64(r.Clients)), r.Processes, report.Thousands(int64(cfg.perProc)), cfg.broadcasts),
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
		if sr := res.Slow; sr != nil {
			series = append(series, report.Series{Name: "others, all reading", MS: sr.Baseline.Samples},
				report.Series{Name: "others, " + sr.WithSlow.Name, MS: sr.WithSlow.Samples})
		}
		chart(&s, "fanout-latency", func(p string) error { return report.CDFChart(p, "Broadcast delivery latency", series) })
		rep.Sections = append(rep.Sections, s)
		rep.Targets = append(rep.Targets,
			report.Target{Goal: fmt.Sprintf("%s-client broadcast p99 ≤ %.0f ms", report.Thousands(targetFanoutCount), targetFanoutP99),
				Measured: report.FormatValue(r.Broadcast.Lat.P99, "ms") + " (" + connected + ")", Met: fanoutMet(r)},
			report.Target{Goal: fmt.Sprintf("≤ %.0f KiB resident memory per idle connection", targetPerConnKiB),
				Measured: report.FormatValue(r.PerConnKiB, "KiB"), Met: report.AtMost(r.PerConnKiB, targetPerConnKiB)})
	}

	if r := res.Slow; r != nil {
		s := report.Section{
			Title: "Slow clients",
			Method: fmt.Sprintf(`The same %s clients; %s of them (1 in %s) are in a room that receives %d frames of %s KiB
before each phase. Phase A: everyone reads; %d measured broadcasts after a warm-up. Phase B: those
clients stop reading (their read loop blocks, with a 4 KiB receive buffer, so the kernel buffers fill
and the server's queue for them grows), the same frames are sent, and the same broadcasts; then they
read again and drain their backlog. One warm-up round, then %d rounds of A then B. The figure is the other clients' p99 over
the B phases; its reference is the same clients' p99 over the A phases, on the same server and
connections.`,
				report.Thousands(int64(r.Clients)), report.Thousands(int64(r.Slow)), ordinal(r.Clients, r.Slow), fillFrames, report.Thousands(fillBytes>>10), cfg.broadcasts, r.Rounds),
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
		if res.Fanout == nil {
			chart(&s, "slow-latency", func(p string) error {
				return report.CDFChart(p, "Broadcast delivery to the reading clients", []report.Series{
					{Name: "all reading", MS: r.Baseline.Samples}, {Name: r.WithSlow.Name, MS: r.WithSlow.Samples}})
			})
		} else {
			s.Notes = append(s.Notes, "The distributions are in the fan-out chart above.")
		}
		rep.Sections = append(rep.Sections, s)
		rep.Targets = append(rep.Targets, report.Target{Goal: "clients that do not read raise the others' p99 by less than 10 %",
			Measured: fmt.Sprintf("%s → %s: %s", report.FormatValue(r.Baseline.Lat.P99, "ms"), report.FormatValue(r.WithSlow.Lat.P99, "ms"), report.FormatRatio(r.Ratio)),
			Met:      report.Below(r.Ratio, targetSlowRaise)})
	}

	if r := res.Cluster; r != nil && len(r.Runs) > 0 {
		s := report.Section{
			Title: "Two instances: the relay",
			Method: fmt.Sprintf(`Two `+"`signalctl serve`"+` processes on one database. Instance A consumes the topic; instance B
consumes another, empty topic (as internal/e2e/cluster_test.go does), so whatever B's clients receive
was consumed by A and relayed through PostgreSQL (NOTIFY inside A's transactions, in seq order below the
horizon). Each of %s recipients has a client on A and one on B; messages (2 recipients each, so twice as
many frames per instance) at each rate for %s after %s of warm-up. The reference of the cross-instance
figures is the same notifications' delivery to the clients on A; where the cross-instance p99 bends as
the rate rises is the relay's ceiling.`,
				report.Thousands(int64(r.Clients)), cfg.duration, cfg.warmup),
		}
		for _, run := range r.Runs {
			rate := report.Thousands(int64(run.Rate))
			s.Rows = append(s.Rows,
				report.Row{Figure: rate + " msg/s: cross-instance p50", Value: run.Cross.Lat.P50, Unit: "ms", Reference: "local", RefValue: run.Local.Lat.P50},
				report.Row{Figure: rate + " msg/s: cross-instance p99", Value: run.Cross.Lat.P99, Unit: "ms", Reference: "local", RefValue: run.Local.Lat.P99},
			)
			s.Notes = append(s.Notes, fmt.Sprintf("%s msg/s: frames received after the warm-up %s of %s on B, %s of %s on A; max %s on B.",
				rate, report.Thousands(int64(run.Cross.Received)), report.Thousands(int64(run.Cross.Expected)),
				report.Thousands(int64(run.Local.Received)), report.Thousands(int64(run.Local.Expected)), report.FormatValue(run.Cross.Lat.Max, "ms")))
		}
		for i, run := range r.Baseline {
			if i >= len(r.Runs) {
				break
			}
			rate := report.Thousands(int64(run.Rate))
			s.Rows = append(s.Rows,
				report.Row{Figure: rate + " msg/s: p99 on A, this build", Value: r.Runs[i].Local.Lat.P99, Unit: "ms", Reference: "baseline", RefValue: run.Local.Lat.P99},
				report.Row{Figure: rate + " msg/s: p99 on B, this build", Value: r.Runs[i].Cross.Lat.P99, Unit: "ms", Reference: "baseline", RefValue: run.Cross.Lat.P99},
			)
		}
		if r.BaselineBin != "" {
			s.Notes = append(s.Notes, "Baseline: the same scenario in the same run with "+r.BaselineBin+".")
		}
		first := r.Runs[0]
		series := []report.Series{{Name: "client on A (consumer)", MS: first.Local.Samples}, {Name: "client on B (relayed)", MS: first.Cross.Samples}}
		if len(r.Baseline) > 0 {
			series = append(series, report.Series{Name: "baseline, client on B", MS: r.Baseline[0].Cross.Samples})
		}
		chart(&s, "cluster-latency", func(p string) error {
			return report.CDFChart(p, fmt.Sprintf("Two instances at %s msg/s: produce → receive", report.Thousands(int64(first.Rate))), series)
		})
		rep.Sections = append(rep.Sections, s)
	}

	if r := res.Scale; r != nil && len(r.Runs) > 0 {
		s := report.Section{
			Title: "Scale: instances draining one backlog",
			Method: fmt.Sprintf(`1 to %d `+"`signalctl serve`"+` processes in one consumer group on one database (4 partitions).
The instances start and share the partitions first; then %s messages (2 recipients each) are produced as
fast as the in-process broker takes them. The time runs from the first row's transaction (smallest
created_at) to every offset committed. The reference is one instance in the same run. Busy cores are
the averages over the drain, by process group: on this 2-core machine they say what bounds the figure.`,
				cfg.scaleMax, report.Thousands(int64(r.Messages))),
		}
		one := r.Runs[0].Rate
		for _, run := range r.Runs {
			row := report.Row{Figure: fmt.Sprintf("%d instance(s)", run.Instances), Value: run.Rate, Unit: "msg/s", Reference: "1 instance", RefValue: one}
			if run.Instances == 2 {
				row.Target = "≥ 1.0× one instance"
				row.Met = report.AtLeast(report.Ratio(run.Rate, one), 1.0)
				rep.Targets = append(rep.Targets, report.Target{Goal: "2 instances drain a backlog at ≥ 1.0× one instance",
					Measured: fmt.Sprintf("%s vs %s: %s", report.FormatValue(run.Rate, "msg/s"), report.FormatValue(one, "msg/s"), report.FormatRatio(report.Ratio(run.Rate, one))),
					Met:      row.Met})
			}
			s.Rows = append(s.Rows, row)
			s.Notes = append(s.Notes, fmt.Sprintf("%d instance(s): partitions %v, %.2f s, busy cores %s.", run.Instances, run.Partitions, run.Seconds, coresText(run.Cores)))
		}
		rep.Sections = append(rep.Sections, s)
	}

	if r := res.Failover; r != nil {
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
		rep.Sections = append(rep.Sections, s)
		rep.Targets = append(rep.Targets,
			report.Target{Goal: "failover (SIGKILL of one of two instances, defaults, 2,000 msg/s): gap and catch-up ≤ 10 s, nothing lost, nothing stored twice",
				Measured: fmt.Sprintf("gap %s, caught up %s, %d frames missing, %d rows of %d", report.FormatValue(r.GapMs, "ms"), report.FormatValue(r.CatchUpMs, "ms"), r.FramesMissing, r.Rows, r.RowsExpected),
				Met:      report.Bool(*gapMet && r.CatchUpMs <= targetFailoverMs && lossless)})
	}
	if r := res.BigOrg; r != nil && len(r.Sizes) > 0 {
		rep.Sections = append(rep.Sections, bigOrgSection(cfg, r, chart, rep))
	}

	if r := res.Hostile; r != nil {
		budget := fmt.Sprintf("%s × queue_bytes (%s MiB)", report.Thousands(int64(r.Connected)), strconv.FormatFloat(float64(r.QueueBytes)/(1<<20), 'g', 4, 64))
		s := report.Section{
			Title: "Hostile clients",
			Method: fmt.Sprintf(`%s clients take broadcasts (2 client processes). Phase A: %d measured broadcasts after a
warm-up. Then %s hostile clients connect from 127.0.0.20: raw sockets with a 4 KiB receive buffer that
complete the handshake and never read again. The harness sends each its own frames (%d KiB of data, to
its notification room, 16 REST calls at a time, round after round) until the bytes waiting for them
(signal_websocket_queued_bytes) reach their budget, websocket.queue_bytes = %s, less three frames; the
server's RSS settles (smallest reading over 3 s after 3 s of rest) and phase B repeats the broadcasts
to the others while the hostile clients hold their budgets. Then the rounds go on until every hostile
client was dropped (close 3008). RSS growth is measured from the moment the hostile clients were
connected and idle; the kernel's socket buffers (up to ~3 MB per socket here) are not in it.`,
				report.Thousands(int64(r.Others)), cfg.broadcasts, report.Thousands(int64(r.Hostile)), r.FrameBytes>>10, report.Thousands(int64(r.QueueBytes))),
			Rows: []report.Row{
				{Figure: "RSS growth, hostile clients holding their budget", Value: (r.RSSHoldKiB - r.RSSBeforeKiB) / 1024, Unit: "MiB",
					Reference: budget, RefValue: float64(r.Connected) * float64(r.QueueBytes) / (1 << 20),
					Target: fmt.Sprintf("≤ %.1f×", targetHostileRSS), Met: report.AtMost(r.HoldRatio, targetHostileRSS)},
				{Figure: "RSS growth at the peak (filling, then past the budget)", Value: (r.RSSPeakKiB - r.RSSBeforeKiB) / 1024, Unit: "MiB",
					Reference: budget, RefValue: float64(r.Connected) * float64(r.QueueBytes) / (1 << 20)},
				{Figure: "bytes queued while holding", Value: r.QueuedHold / (1 << 20), Unit: "MiB"},
				{Figure: "others' broadcast p99, hostile clients holding", Value: r.WithHostile.Lat.P99, Unit: "ms", Reference: "without them", RefValue: r.Baseline.Lat.P99,
					Target: fmt.Sprintf("< %.2f×", targetHostileP99), Met: report.Below(r.Ratio, targetHostileP99)},
				{Figure: "others' broadcast p50, hostile clients holding", Value: r.WithHostile.Lat.P50, Unit: "ms", Reference: "without them", RefValue: r.Baseline.Lat.P50},
				{Figure: "server RSS after the hostile clients were dropped", Value: r.RSSAfterKiB / 1024, Unit: "MiB"},
			},
			Notes: []string{
				fmt.Sprintf("%s of %s hostile clients connected; %s dropped as slow in the end (%s already while the others were holding); bytes still queued afterwards: %.0f.",
					report.Thousands(int64(r.Connected)), report.Thousands(int64(r.Hostile)), report.Thousands(int64(r.Dropped)), report.Thousands(int64(r.DroppedEarly)), r.QueuedAfter),
				fmt.Sprintf("Server RSS: %.0f MiB with the hostile clients idle, %.0f MiB holding, %.0f MiB at the peak, %.0f MiB after they were dropped. %s frames sent in %d rounds over %.1f s.",
					r.RSSBeforeKiB/1024, r.RSSHoldKiB/1024, r.RSSPeakKiB/1024, r.RSSAfterKiB/1024, report.Thousands(int64(r.FillSends)), r.FillRounds, r.FillSeconds),
				"The peak includes the garbage collector's headroom (GOGC=100 lets the heap reach about twice what is live before a collection) and the REST requests' own buffers; the holding figure is what the queued frames cost once collected.",
				fmt.Sprintf("Deliveries to the others: %s of %s without, %s of %s with the hostile clients. Connections of the others closed by the server: %d.",
					report.Thousands(int64(r.Baseline.Received)), report.Thousands(int64(r.Baseline.Expected)),
					report.Thousands(int64(r.WithHostile.Received)), report.Thousands(int64(r.WithHostile.Expected)), r.OthersClosed),
			},
		}
		chart(&s, "hostile-latency", func(p string) error {
			return report.CDFChart(p, "Broadcast delivery to the other clients", []report.Series{
				{Name: "without hostile clients", MS: r.Baseline.Samples}, {Name: "hostile clients holding their budget", MS: r.WithHostile.Samples}})
		})
		rep.Sections = append(rep.Sections, s)
		rep.Targets = append(rep.Targets,
			report.Target{Goal: fmt.Sprintf("hostile clients: RSS growth ≤ %.1f × hostile × queue_bytes", targetHostileRSS),
				Measured: fmt.Sprintf("%.0f MiB for %s: %s (peak %s)", (r.RSSHoldKiB-r.RSSBeforeKiB)/1024, budget, report.FormatRatio(r.HoldRatio), report.FormatRatio(r.PeakRatio)),
				Met:      report.AtMost(r.HoldRatio, targetHostileRSS)},
			report.Target{Goal: "hostile clients raise the others' broadcast p99 by less than 10 %",
				Measured: fmt.Sprintf("%s → %s: %s", report.FormatValue(r.Baseline.Lat.P99, "ms"), report.FormatValue(r.WithHostile.Lat.P99, "ms"), report.FormatRatio(r.Ratio)),
				Met:      report.Below(r.Ratio, targetHostileP99)})
	}
	if r := res.Inbox; r != nil {
		rep.Sections = append(rep.Sections, inboxSection(cfg, r, rep))
	}
	if r := res.Poison; r != nil {
		rep.Sections = append(rep.Sections, poisonSection(cfg, r, chart, rep))
	}

	rep.Notes = append(rep.Notes,
		"Everything runs on this one machine: the server, PostgreSQL, the in-process broker (in the harness) and the client processes share its cores, so client-side work is inside every latency figure.",
		"Latencies are wall-clock differences between processes on the same machine (CLOCK_REALTIME).")
	for _, e := range res.Errors {
		rep.Notes = append(rep.Notes, "Failed: "+e)
	}
	return rep
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

func joinMs(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, ", ")
}

// diskOf names the file system holding path, from /proc/mounts.
func diskOf(path string) string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "unknown storage"
	}
	defer f.Close()
	type mount struct{ dev, dir, fs string }
	var ms []mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 {
			ms = append(ms, mount{fields[0], fields[1], fields[2]})
		}
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i].dir) > len(ms[j].dir) })
	for _, m := range ms {
		if path == m.dir || strings.HasPrefix(path, strings.TrimSuffix(m.dir, "/")+"/") {
			return fmt.Sprintf("%s on %s", m.fs, m.dev)
		}
	}
	return "unknown storage"
}

// closedText is "none" or "12 (close code 3008: 12)".
func closedText(n int, codes map[int]int) string {
	if n == 0 {
		return "none"
	}
	keys := make([]int, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("close code %d: %d", k, codes[k])
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, ", "))
}

func ratesText(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = report.Thousands(int64(math.Round(x)))
	}
	return strings.Join(parts, ", ")
}

func inboxSection(cfg *config, r *inboxResult, rep *report.Report) report.Section {
	s := report.Section{
		Title: "Inbox at " + report.Thousands(int64(r.Rows)) + " notifications",
		Method: fmt.Sprintf(`%s notifications over %d days (one partition a day, %d partitions in all), loaded with COPY
and indexed afterwards: %d recipients with %s each, %d with %s, the rest over %s recipients (~60 each). One
`+"`signalctl serve`"+` answers the REST API (API key, one request at a time, %d measured per kind after
%d of warm-up; latency as the harness sees it, HTTP included). Mark-all-read is POST /notifications/read-all
of a recipient with %s unread notifications; its reference is the statement of the version before
(UPDATE of the wide rows) on another such recipient, WAL measured with pg_current_wal_lsn. Retention: serve
drains a backlog of %s messages; 2 s after its first rows, store.Maintain removes the oldest day;
the ingest rate from the removal's start to 1 s after its end is compared with the 2 s before.`,
			report.Thousands(int64(r.Rows)), r.Days, r.Partitions, r.HotRecipients, report.Thousands(int64(r.HotRows)),
			r.WarmRecipients, report.Thousands(int64(r.WarmRows)), report.Thousands(int64(r.ColdRecipients)),
			cfg.inboxRequests, cfg.inboxRequests/10, report.Thousands(int64(r.WarmRows)), report.Thousands(int64(cfg.inboxBacklog))),
	}
	worst := 0.0
	for _, q := range r.Queries {
		row := report.Row{Figure: q.Name + ", p99", Value: q.Lat.P99, Unit: "ms",
			Target: fmt.Sprintf("≤ %.0f ms", targetInboxP99), Met: report.AtMost(q.Lat.P99, targetInboxP99)}
		worst = max(worst, q.Lat.P99)
		s.Rows = append(s.Rows, row, report.Row{Figure: q.Name + ", p50", Value: q.Lat.P50, Unit: "ms"})
	}
	if len(r.Queries) > 0 {
		rep.Targets = append(rep.Targets, report.Target{Goal: fmt.Sprintf("inbox page and counts p99 ≤ %.0f ms", targetInboxP99),
			Measured: "worst kind: " + report.FormatValue(worst, "ms"), Met: report.AtMost(worst, targetInboxP99)})
	}
	s.Rows = append(s.Rows,
		report.Row{Figure: "mark-all-read of " + report.Thousands(int64(r.WarmRows)) + ", p50", Value: r.ReadAllMs.P50, Unit: "ms",
			Reference: "UPDATE of the wide rows", RefValue: r.UpdateMs},
		report.Row{Figure: "mark-all-read WAL", Value: float64(r.ReadAllWAL) / 1024, Unit: "KiB",
			Reference: "UPDATE of the wide rows", RefValue: float64(r.UpdateWAL) / 1024},
		report.Row{Figure: "first count of a hot recipient after the cache was invalidated, p50", Value: r.RecountMs.P50, Unit: "ms"},
		report.Row{Figure: "first count of a hot recipient after the cache was invalidated, max", Value: r.RecountMs.Max, Unit: "ms"},
	)
	for _, rm := range []*removalRun{r.Drop, r.Delete} {
		if rm == nil {
			continue
		}
		ratio := report.Ratio(rm.DuringRate, rm.BeforeRate)
		row := report.Row{Figure: "ingest while removing a day: " + rm.How, Value: rm.DuringRate, Unit: "msg/s",
			Reference: "the 2 s before", RefValue: rm.BeforeRate}
		if !rm.Outlasted {
			row.Figure += " (the backlog ran out before the removal ended: not comparable)"
		}
		if rm == r.Drop {
			row.Target, row.Met = fmt.Sprintf("≥ %.1f× before", targetRemovalRate), report.AtLeast(ratio, targetRemovalRate)
			if !rm.Outlasted {
				row.Met = nil
			}
			rep.Targets = append(rep.Targets, report.Target{Goal: "retention removing one day slows ingest by less than 10 %",
				Measured: fmt.Sprintf("%s while removing vs %s before: %s", report.FormatValue(rm.DuringRate, "msg/s"), report.FormatValue(rm.BeforeRate, "msg/s"), report.FormatRatio(ratio)),
				Met:      row.Met})
		}
		s.Rows = append(s.Rows, row,
			report.Row{Figure: "time to remove the day (" + report.Thousands(rm.DayRows) + " rows): " + rm.How, Value: rm.RemovalSeconds, Unit: "s"},
			report.Row{Figure: "ingest over the whole drain: " + rm.How, Value: rm.DrainRate, Unit: "msg/s"})
	}
	if m := r.Migration; m != nil {
		s.Rows = append(s.Rows,
			report.Row{Figure: "migrate up (0006, 0007) of the table of " + report.Thousands(int64(r.Rows)), Value: m.UpSeconds, Unit: "s"},
			report.Row{Figure: "longest single-row insert during migrate up", Value: m.WriterMaxMs, Unit: "ms"},
			report.Row{Figure: "migrate down 3 (to version 5)", Value: m.DownSeconds, Unit: "s"})
		for i, sec := range m.StepSeconds {
			s.Rows = append(s.Rows, report.Row{Figure: fmt.Sprintf("migration %04d", 6+i), Value: sec, Unit: "s"})
		}
		s.Notes = append(s.Notes, fmt.Sprintf("During migrate up a writer inserted %d rows one at a time, %d of them took over 100 ms. Loading the table of the version before took %.0f s.",
			m.WriterInserts, m.WriterSlow, m.LoadSeconds))
	}
	s.Notes = append(s.Notes, fmt.Sprintf("Loading the day partitions (COPY, indexes, VACUUM ANALYZE) took %.0f s; the table is %.1f GiB with its indexes.",
		r.LoadSeconds, float64(r.TableBytes)/(1<<30)))
	return s
}

// bigOrgSection reports the big-org scenario, and adds its targets (on the
// largest organizer) to rep.
func bigOrgSection(cfg *config, r *bigOrgResult, chart func(*report.Section, string, func(string) error), rep *report.Report) report.Section {
	s := report.Section{
		Title: "Big organizations",
		Method: fmt.Sprintf(`Events with recipientScope org, to organizers of %s members (memberships loaded into
the database first). Throughput: a backlog of %d events per organizer is drained by `+"`signalctl serve`"+`
with its defaults (ingest.max_rows_per_tx 8,192, the first of several transactions 2,048 rows), timed like
the ingest scenario, against one pgx CopyFrom of the identical rows into an empty table; no client is
connected. Latency: every member is connected (one WebSocket client each), then %d events are produced
one at a time, each carrying the time it was handed to the Kafka client; for each event the first and
the last member's receive time − that time (so the Kafka hop, the member lookup and the first chunk's
commit are inside the first push). Peak memory is serve's VmHWM at the end of each phase. "one transaction"
repeats the latency phase with ingest.max_rows_per_tx 1,048,576 (the behaviour before batches were
bounded by rows).`, sizesText(r), cfg.bigOrgEvents, cfg.bigOrgLatencyEvents),
	}
	var series []report.Series
	for _, z := range r.Sizes {
		m := report.Thousands(int64(z.Members))
		ratio := report.Ratio(z.SignalRate, z.CopyRate)
		rate := report.Row{Figure: m + " members: rows/s", Value: z.SignalRate, Unit: "rows/s", Reference: "raw COPY", RefValue: z.CopyRate,
			Target: fmt.Sprintf("≥ %.1f× COPY", targetCopyRatio), Met: report.AtLeast(ratio, targetCopyRatio)}
		s.Rows = append(s.Rows, rate)
		s.Notes = append(s.Notes, fmt.Sprintf("%s members: %s rows in %d transactions, %.2f s (COPY %.2f s); serve's peak RSS %s; busy cores %s.",
			m, report.Thousands(int64(z.Rows)), z.Transactions, z.SignalSeconds, z.CopySeconds, report.FormatValue(z.DrainPeakKiB/1024, "MiB"), coresText(z.DrainCores)))
		var first *bool
		if l := z.Latency; l != nil {
			ref := func(get func(*bigOrgLatency) float64) (string, float64) {
				if z.Unbounded == nil {
					return "", 0
				}
				return "one transaction", get(z.Unbounded)
			}
			row := func(fig string, v float64, unit string, get func(*bigOrgLatency) float64) report.Row {
				rn, rv := ref(get)
				return report.Row{Figure: m + " members: " + fig, Value: v, Unit: unit, Reference: rn, RefValue: rv}
			}
			first = report.AtMost(l.First.P50, targetFirstPushMs)
			fr := row("first push, median", l.First.P50, "ms", func(u *bigOrgLatency) float64 { return u.First.P50 })
			fr.Target, fr.Met = fmt.Sprintf("≤ %.0f ms", targetFirstPushMs), first
			s.Rows = append(s.Rows, fr,
				row("first push, max", l.First.Max, "ms", func(u *bigOrgLatency) float64 { return u.First.Max }),
				row("last push, median", l.Last.P50, "ms", func(u *bigOrgLatency) float64 { return u.Last.P50 }),
				row("last push, max", l.Last.Max, "ms", func(u *bigOrgLatency) float64 { return u.Last.Max }),
				row("peak RSS, members connected", l.PeakRSSKiB/1024, "MiB", func(u *bigOrgLatency) float64 { return u.PeakRSSKiB / 1024 }))
			s.Notes = append(s.Notes, fmt.Sprintf("%s members: %s of %s frames received.", m, report.Thousands(int64(l.Received)), report.Thousands(int64(l.Expected))))
			series = append(series, report.Series{Name: m + " members, first push", MS: l.FirstMs}, report.Series{Name: m + " members, last push", MS: l.LastMs})
		}
		if z.Members == r.Sizes[len(r.Sizes)-1].Members {
			rep.Targets = append(rep.Targets,
				report.Target{Goal: fmt.Sprintf("an event to %s members is stored at ≥ %.1f × the raw COPY rate", m, targetCopyRatio),
					Measured: fmt.Sprintf("%s vs %s: %s", report.FormatValue(z.SignalRate, "rows/s"), report.FormatValue(z.CopyRate, "rows/s"), report.FormatRatio(ratio)),
					Met:      rate.Met})
			if z.Latency != nil {
				rep.Targets = append(rep.Targets, report.Target{Goal: fmt.Sprintf("its first push ≤ %.0f ms after the event (median)", targetFirstPushMs),
					Measured: report.FormatValue(z.Latency.First.P50, "ms"), Met: first})
			}
		}
	}
	if len(series) > 0 {
		chart(&s, "bigorg-latency", func(p string) error {
			return report.CDFChart(p, "Event to a big organizer: produce → first and last member", series)
		})
	}
	return s
}

func sizesText(r *bigOrgResult) string {
	var parts []string
	for _, z := range r.Sizes {
		parts = append(parts, report.Thousands(int64(z.Members)))
	}
	return strings.Join(parts, " and ")
}
