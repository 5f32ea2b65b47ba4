// Command signalbench is Signal's benchmark harness: it starts real
// `signalctl serve` processes against a durable throwaway PostgreSQL
// cluster and an in-process Kafka-protocol broker, drives them with
// producers and with WebSocket clients in separate processes, and writes
// bench/results/<date>.md with PNG charts. See bench/README.md.
//
//	signalbench all|ingest|e2e|fanout|slow|cluster|scale|failover|big-org|hostile|inbox|poison [flags]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/signal-notify/signal/bench/report"
)

// config is every knob of a run.
type config struct {
	scenario       string
	out            string
	bin            string
	date           string
	keep           bool
	pprofDir       string
	timeout        time.Duration
	ingestN        int
	seedN          int
	ingestRuns     int
	rates          []float64
	duration       time.Duration
	warmup         time.Duration
	recipients     int
	clients        int
	perProc        int
	slowPct        float64
	broadcasts     int
	slowRounds     int
	clusterRates   []float64
	clusterClients int
	// inbox scenario
	inboxRows          int
	inboxDays          int
	inboxRequests      int
	inboxBacklog       int
	inboxSkipMigration bool
	baselineBin        string
	scaleN             int
	scaleMax           int
	// big-org
	bigOrgSizes         []int
	bigOrgEvents        int
	bigOrgLatencyEvents int
	bigOrgUnbounded     bool
	hostile             int
	hostileOthers       int
	queueBytes          int
	poisonRounds        int
}

// results is what a run measured; a nil part did not run (or failed).
type results struct {
	Ingest   *ingestResult   `json:"ingest,omitempty"`
	E2E      *e2eResult      `json:"e2e,omitempty"`
	Fanout   *fanoutResult   `json:"fanout,omitempty"`
	Slow     *slowResult     `json:"slow,omitempty"`
	Cluster  *clusterResult  `json:"cluster,omitempty"`
	Scale    *scaleResult    `json:"scale,omitempty"`
	Failover *failoverResult `json:"failover,omitempty"`
	BigOrg   *bigOrgResult   `json:"bigOrg,omitempty"`
	Hostile  *hostileResult  `json:"hostile,omitempty"`
	Inbox    *inboxResult    `json:"inbox,omitempty"`
	Poison   *poisonResult   `json:"poison,omitempty"`
	Errors   []string        `json:"errors,omitempty"`
}

var scenarios = []string{"all", "ingest", "e2e", "fanout", "slow", "cluster", "scale", "failover", "big-org", "hostile", "inbox", "poison"}

func usage() {
	fmt.Fprintf(os.Stderr, `signalbench: Signal's benchmark suite.

Usage: signalbench SCENARIO [flags]

Scenarios:
  all      every scenario below, in order, one report
  ingest   a backlog of N messages into PostgreSQL, against COPY and the seed's one-at-a-time shape
  e2e      produce → WebSocket receive latency at steady rates
  fanout   broadcast delivery to 15,000 clients; resident memory per idle connection
  slow     the same with 5 %% of the clients not reading: the others' p99
  cluster  delivery to clients on a second instance (relayed through PostgreSQL) at rising rates
  scale    the same backlog drained by 1, 2 and 3 instances sharing a consumer group and a database
  failover two instances with the default settings at 2,000 msg/s, one SIGKILLed: the gap in deliveries
  big-org  events to organizers of 1,000 and 10,000 members: rows/s against COPY, first and last push, peak memory
  hostile  1,000 clients that never read, sent frames past their byte budget, beside 10,000 taking broadcasts
  cluster  delivery to clients on a second instance (relayed through PostgreSQL)
  inbox    a 10 M-row inbox: migration, pages and counts, mark-all-read, retention while ingesting
  poison   valid traffic at 2,000 msg/s with one hostile record per 1,000 (each kind of issue 20), against none

Run "signalbench SCENARIO -h" for the flags.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	if os.Args[1] == "client" {
		if err := runClient(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "signalbench client:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parse(os.Args[1], os.Args[2:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "signalbench:", err)
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "signalbench:", err)
		os.Exit(1)
	}
}

func parse(scenario string, args []string) (*config, error) {
	known := false
	for _, s := range scenarios {
		known = known || s == scenario
	}
	if !known {
		return nil, fmt.Errorf("unknown scenario %q", scenario)
	}
	cfg := &config{scenario: scenario}
	fs := flag.NewFlagSet(scenario, flag.ContinueOnError)
	fs.StringVar(&cfg.out, "out", "bench/results", "folder of the report and charts")
	fs.StringVar(&cfg.bin, "bin", "bin/signalctl", "the signalctl binary under test")
	fs.StringVar(&cfg.date, "date", time.Now().Format("2006-01-02"), "date in the report's file name")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temporary folder (database, server logs)")
	fs.StringVar(&cfg.pprofDir, "pprof-dir", "", "save CPU profiles of the server here (needs a build with debug.pprof_addr)")
	fs.DurationVar(&cfg.timeout, "timeout", 60*time.Minute, "stop everything after this long")
	fs.IntVar(&cfg.ingestN, "n", 200000, "ingest: messages in the backlog (2 recipients each)")
	fs.IntVar(&cfg.seedN, "seed-n", 5000, "ingest: messages for the seed-shape reference")
	fs.IntVar(&cfg.ingestRuns, "ingest-runs", 2, "ingest: runs of Signal and of COPY, alternating (the best of each counts)")
	rates := fs.String("rates", "1000,2000,5000", "e2e: steady rates in messages/s")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "e2e, cluster: measured time per rate")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "e2e, cluster: time produced before measuring")
	fs.IntVar(&cfg.recipients, "recipients", 1000, "e2e: connected recipients (one client each)")
	fs.IntVar(&cfg.clients, "clients", 15000, "fanout, slow: connected clients")
	fs.IntVar(&cfg.perProc, "per-proc", 5000, "fanout, slow: most connections per client process (at least 3 processes)")
	fs.Float64Var(&cfg.slowPct, "slow-pct", 5, "slow: percentage of clients that stop reading")
	fs.IntVar(&cfg.broadcasts, "broadcasts", 10, "fanout, slow: measured broadcasts per phase (after one warm-up)")
	fs.IntVar(&cfg.slowRounds, "slow-rounds", 3, "slow: rounds of (all reading, some not reading) phases")
	clusterRates := fs.String("cluster-rates", "1000,2000,5000,10000", "cluster: rising rates in messages/s (the relay's ceiling)")
	fs.IntVar(&cfg.clusterClients, "cluster-clients", 200, "cluster: recipients, each with a client on both instances")
	fs.IntVar(&cfg.inboxRows, "inbox-rows", 10_000_000, "inbox: notifications in the table")
	fs.IntVar(&cfg.inboxDays, "inbox-days", 90, "inbox: days the notifications span (one partition each)")
	fs.IntVar(&cfg.inboxRequests, "inbox-requests", 1000, "inbox: measured requests per kind of query")
	fs.IntVar(&cfg.inboxBacklog, "inbox-backlog", 300000, "inbox: messages drained while a day is removed")
	fs.BoolVar(&cfg.inboxSkipMigration, "inbox-skip-migration", false, "inbox: skip the migration part (a second load of the rows)")
	fs.StringVar(&cfg.baselineBin, "baseline-bin", "", "cluster: a second signalctl binary (e.g. built from an older commit) measured in the same run")
	fs.IntVar(&cfg.scaleN, "scale-n", 200000, "scale: messages in the backlog (2 recipients each)")
	fs.IntVar(&cfg.scaleMax, "scale-max", 3, "scale: most instances (runs 1…max)")
	bigOrgSizes := fs.String("bigorg-sizes", "1000,10000", "big-org: members of each organizer measured")
	fs.IntVar(&cfg.bigOrgEvents, "bigorg-events", 20, "big-org: events in the backlog drained against COPY, per organizer")
	fs.IntVar(&cfg.bigOrgLatencyEvents, "bigorg-latency-events", 10, "big-org: events sent one at a time to the connected members")
	fs.BoolVar(&cfg.bigOrgUnbounded, "bigorg-unbounded", true, "big-org: also time the events with one transaction per batch (ingest.max_rows_per_tx 1048576)")
	fs.IntVar(&cfg.hostile, "hostile", 1000, "hostile: clients that never read")
	fs.IntVar(&cfg.hostileOthers, "hostile-others", 10000, "hostile: clients taking broadcasts meanwhile")
	fs.IntVar(&cfg.queueBytes, "queue-bytes", 1<<20, "hostile: websocket.queue_bytes of the server")
	fs.IntVar(&cfg.poisonRounds, "poison-rounds", 2, "poison: pairs of phases (without, then with hostile records) of -warmup + -duration each")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	var err error
	if cfg.rates, err = parseRates("-rates", *rates); err != nil {
		return nil, err
	}
	if cfg.clusterRates, err = parseRates("-cluster-rates", *clusterRates); err != nil {
		return nil, err
	}
	sizes, err := parseRates("-bigorg-sizes", *bigOrgSizes)
	if err != nil {
		return nil, err
	}
	for _, n := range sizes {
		cfg.bigOrgSizes = append(cfg.bigOrgSizes, int(n))
	}
	switch {
	case cfg.ingestN < 1 || cfg.seedN < 1 || cfg.ingestRuns < 1:
		return nil, errors.New("-n, -seed-n and -ingest-runs must be positive")
	case cfg.clients < 1 || cfg.perProc < 1 || cfg.recipients < 2 || cfg.clusterClients < 2:
		return nil, errors.New("-clients, -per-proc must be positive; -recipients, -cluster-clients at least 2")
	case cfg.perProc > 6000:
		return nil, errors.New("-per-proc: at most 6,000 connections per client process (file limit)")
	case cfg.slowPct <= 0 || cfg.slowPct > 50:
		return nil, errors.New("-slow-pct must be in (0, 50]")
	case cfg.broadcasts < 1 || cfg.slowRounds < 1:
		return nil, errors.New("-broadcasts and -slow-rounds must be at least 1")
	case cfg.inboxRows < 10000 || cfg.inboxDays < 3 || cfg.inboxRequests < 10 || cfg.inboxBacklog < 100:
		return nil, errors.New("-inbox-rows at least 10,000, -inbox-days at least 3, -inbox-requests at least 10, -inbox-backlog at least 100")
	case cfg.scaleN < 1 || cfg.scaleMax < 1 || cfg.scaleMax > 4:
		return nil, errors.New("-scale-n must be positive and -scale-max in [1, 4] (the topic has 4 partitions)")
	case cfg.bigOrgEvents < 1 || cfg.bigOrgLatencyEvents < 1:
		return nil, errors.New("-bigorg-events and -bigorg-latency-events must be positive")
	case cfg.hostile < 1 || cfg.hostileOthers < 1 || cfg.queueBytes < 64<<10:
		return nil, errors.New("-hostile and -hostile-others must be positive, -queue-bytes at least 65536")
	case cfg.poisonRounds < 1:
		return nil, errors.New("-poison-rounds must be at least 1")
	}
	return cfg, nil
}

func parseRates(flagName, list string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(list, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive number", flagName, f)
		}
		out = append(out, r)
	}
	return out, nil
}

func (c *config) has(s string) bool { return c.scenario == "all" || c.scenario == s }

func run(ctx context.Context, cfg *config) error {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	if cfg.pprofDir != "" {
		if err := os.MkdirAll(cfg.pprofDir, 0o755); err != nil {
			return err
		}
		globalPprofDir = cfg.pprofDir
	}
	started := time.Now()
	loadStart := report.LoadAverage()
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.close()
	// The commit and work tree state now, close to when bin/signalctl was built.
	machine := report.DetectMachine(e.pgVer)
	var res results
	fail := func(what string, err error) {
		msg := fmt.Sprintf("%s: %v", what, err)
		logf("FAILED %s", msg)
		res.Errors = append(res.Errors, msg)
	}
	// Each scenario gets its own broker, database and server; everything
	// it started stops before the next one.
	scoped := func(name string, fn func(ctx context.Context, e *env) error) {
		if ctx.Err() != nil {
			fail(name, ctx.Err())
			return
		}
		se := &env{cfg: cfg, dir: e.dir, pg: e.pg, bin: e.bin}
		defer func() {
			se.mu.Lock()
			fns := se.cleanup
			se.cleanup = nil
			se.mu.Unlock()
			for i := len(fns) - 1; i >= 0; i-- {
				fns[i]()
			}
		}()
		logf("=== %s", name)
		// Start each scenario from clean buffers: the one before may have
		// left gigabytes of WAL that a checkpoint would write meanwhile.
		se.checkpoint(ctx)
		if err := fn(ctx, se); err != nil {
			fail(name, err)
		}
	}
	if cfg.has("ingest") {
		scoped("ingest", func(ctx context.Context, e *env) (err error) { res.Ingest, err = runIngest(ctx, e); return })
	}
	if cfg.has("e2e") {
		scoped("e2e", func(ctx context.Context, e *env) (err error) { res.E2E, err = runE2E(ctx, e); return })
	}
	if cfg.has("fanout") || cfg.has("slow") {
		scoped("fanout", func(ctx context.Context, e *env) (err error) {
			res.Fanout, res.Slow, err = runBroadcasts(ctx, e, cfg.has("fanout"), cfg.has("slow"))
			return
		})
	}
	if cfg.has("cluster") {
		scoped("cluster", func(ctx context.Context, e *env) (err error) { res.Cluster, err = runCluster(ctx, e); return })
	}
	if cfg.has("scale") {
		scoped("scale", func(ctx context.Context, e *env) (err error) { res.Scale, err = runScale(ctx, e); return })
	}
	if cfg.has("failover") {
		scoped("failover", func(ctx context.Context, e *env) (err error) { res.Failover, err = runFailover(ctx, e); return })
	}
	if cfg.has("big-org") {
		scoped("big-org", func(ctx context.Context, e *env) (err error) { res.BigOrg, err = runBigOrg(ctx, e); return })
	}
	if cfg.has("hostile") {
		scoped("hostile", func(ctx context.Context, e *env) (err error) { res.Hostile, err = runHostile(ctx, e); return })
	}
	if cfg.has("inbox") {
		scoped("inbox", func(ctx context.Context, e *env) (err error) { res.Inbox, err = runInbox(ctx, e); return })
	}
	if cfg.has("poison") {
		scoped("poison", func(ctx context.Context, e *env) (err error) { res.Poison, err = runPoison(ctx, e); return })
	}

	prefix := cfg.date
	if cfg.scenario != "all" {
		prefix += "-" + cfg.scenario
	}
	rep := buildReport(cfg, e, &res, prefix, time.Since(started), machine)
	rep.Machine.Load = fmt.Sprintf("1-minute load average %s before the run, %s after it (the run itself adds to it)", loadStart, report.LoadAverage())
	mdPath := filepath.Join(cfg.out, prefix+".md")
	if err := rep.WriteFile(mdPath); err != nil {
		return err
	}
	raw, _ := json.MarshalIndent(struct {
		Machine any `json:"machine"`
		*results
	}{rep.Machine, &res}, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.out, prefix+".json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	logf("report: %s (%s)", mdPath, time.Since(started).Round(time.Second))
	if len(res.Errors) > 0 {
		return fmt.Errorf("%d scenario(s) failed: %s", len(res.Errors), strings.Join(res.Errors, "; "))
	}
	return nil
}
