// Command signalbench is Signal's benchmark harness: it starts real
// `signalctl serve` processes against a durable throwaway PostgreSQL
// cluster and an in-process Kafka-protocol broker, drives them with
// producers and with WebSocket clients in separate processes, and writes
// bench/results/<date>.md with PNG charts. See bench/README.md.
//
//	signalbench all|SCENARIO [flags]
//
// Each scenario is one file that registers itself (scenario.go).
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
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/signal-notify/signal/bench/report"
)

// config is what every scenario shares: where the report goes, the binary
// under test, and the measurement settings used by more than one scenario.
// A scenario's own flags live in its file.
type config struct {
	scenario string
	out      string
	bin      string
	date     string
	keep     bool
	pprofDir string
	timeout  time.Duration
	// e2e and cluster: measured time and warm-up per rate.
	duration time.Duration
	warmup   time.Duration
	// fanout, slow and hostile: measured broadcasts per phase.
	broadcasts int
	// fanout, slow and hostile: most connections per client process.
	perProc int

	// runs are the selected scenarios, in order.
	runs []selected
}

type selected struct {
	*scenario
	run
}

func usage() {
	fmt.Fprintf(os.Stderr, `signalbench: Signal's benchmark suite.

Usage: signalbench SCENARIO [flags]

Scenarios:
%s
Run "signalbench SCENARIO -h" for the flags.
`, scenarioHelp())
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
	if err := runAll(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "signalbench:", err)
		os.Exit(1)
	}
}

// parse selects the scenarios of name (all: every one) and parses the
// shared flags and theirs.
func parse(name string, args []string) (*config, error) {
	cfg := &config{scenario: name}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&cfg.out, "out", "bench/results", "folder of the report and charts")
	fs.StringVar(&cfg.bin, "bin", "bin/signalctl", "the signalctl binary under test")
	fs.StringVar(&cfg.date, "date", time.Now().Format("2006-01-02"), "date in the report's file name")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temporary folder (database, server logs)")
	fs.StringVar(&cfg.pprofDir, "pprof-dir", "", "save CPU profiles of the server here (needs a build with debug.pprof_addr)")
	fs.DurationVar(&cfg.timeout, "timeout", 60*time.Minute, "stop everything after this long")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "e2e, cluster: measured time per rate")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "e2e, cluster: time produced before measuring")
	fs.IntVar(&cfg.broadcasts, "broadcasts", 10, "fanout, slow, hostile: measured broadcasts per phase (after one warm-up)")
	fs.IntVar(&cfg.perProc, "per-proc", 5000, "fanout, slow, hostile: most connections per client process (at least 3 processes)")
	for _, s := range scenarios() {
		if name == "all" || registry[name] == s {
			cfg.runs = append(cfg.runs, selected{s, s.setup(fs)})
		}
	}
	if len(cfg.runs) == 0 {
		return nil, fmt.Errorf("unknown scenario %q", name)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	switch {
	case cfg.perProc < 1:
		return nil, errors.New("-per-proc must be positive")
	case cfg.perProc > 6000:
		return nil, errors.New("-per-proc: at most 6,000 connections per client process (file limit)")
	case cfg.broadcasts < 1:
		return nil, errors.New("-broadcasts must be at least 1")
	case cfg.duration <= 0 || cfg.warmup < 0:
		return nil, errors.New("-duration must be positive, -warmup not negative")
	}
	for _, r := range cfg.runs {
		if err := r.check(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// ratesVar defines a flag of comma-separated positive numbers in p,
// starting at def.
func ratesVar(fs *flag.FlagSet, p *[]float64, name, def, usage string) {
	v, err := parseRates("-"+name, def)
	if err != nil {
		panic(err)
	}
	*p = v
	fs.Func(name, usage+" (default "+def+")", func(s string) (err error) {
		*p, err = parseRates("-"+name, s)
		return err
	})
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

// has reports whether the scenario (or part) called name was selected.
func (c *config) has(name string) bool { return c.scenario == "all" || c.scenario == name }

// lookup is the selected run of the scenario called name, or nil.
func (c *config) lookup(name string) run {
	for _, r := range c.runs {
		if r.scenario == registry[name] {
			return r.run
		}
	}
	return nil
}

func runAll(ctx context.Context, cfg *config) error {
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
	var failures []string
	fail := func(what string, err error) {
		msg := fmt.Sprintf("%s: %v", what, err)
		logf("FAILED %s", msg)
		failures = append(failures, msg)
	}
	// Each scenario gets its own broker, database and server; everything
	// it started stops before the next one.
	for _, r := range cfg.runs {
		if ctx.Err() != nil {
			fail(r.name, ctx.Err())
			continue
		}
		if err := e.scoped(ctx, r.name, r.measure); err != nil {
			fail(r.name, err)
		}
	}

	prefix := cfg.date
	if cfg.scenario != "all" {
		prefix += "-" + cfg.scenario
	}
	rep := buildReport(cfg, e, prefix, time.Since(started), machine, failures)
	rep.Machine.Load = fmt.Sprintf("1-minute load average %s before the run, %s after it (the run itself adds to it)", loadStart, report.LoadAverage())
	mdPath := filepath.Join(cfg.out, prefix+".md")
	if err := rep.WriteFile(mdPath); err != nil {
		return err
	}
	// The JSON file: the machine, each scenario's results under its key
	// (nothing for one that did not run) and the failures.
	out := map[string]any{"machine": rep.Machine}
	for _, r := range cfg.runs {
		for k, v := range r.results() {
			if rv := reflect.ValueOf(v); v != nil && !(rv.Kind() == reflect.Pointer && rv.IsNil()) {
				out[k] = v
			}
		}
	}
	if len(failures) > 0 {
		out["errors"] = failures
	}
	raw, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.out, prefix+".json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	logf("report: %s (%s)", mdPath, time.Since(started).Round(time.Second))
	if len(failures) > 0 {
		return fmt.Errorf("%d scenario(s) failed: %s", len(failures), strings.Join(failures, "; "))
	}
	return nil
}
