package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/signal-notify/signal/bench/report"
)

// The e2e scenario: produce → WebSocket receive latency at steady rates,
// one client per recipient.
func init() {
	register(&scenario{name: "e2e", order: 20,
		summary: "produce → WebSocket receive latency at steady rates",
		setup: func(fs *flag.FlagSet) run {
			x := &e2eRun{}
			ratesVar(fs, &x.rates, "rates", "1000,2000,5000", "e2e: steady rates in messages/s")
			fs.IntVar(&x.recipients, "recipients", 1000, "e2e: connected recipients (one client each)")
			return x
		}})
}

// Targets of the issue, on this 2-core machine.
const (
	targetE2ERate = 2000
	targetE2EP99  = 25.0
)

type e2eRun struct {
	rates      []float64
	recipients int
	res        *e2eResult
}

func (x *e2eRun) check() error {
	if x.recipients < 2 {
		return errors.New("-recipients must be at least 2")
	}
	return nil
}

func (x *e2eRun) measure(ctx context.Context, e *env) (err error) {
	x.res, err = x.run(ctx, e)
	return err
}

func (x *e2eRun) results() map[string]any { return map[string]any{"e2e": x.res} }

type e2eResult struct {
	Recipients int          `json:"recipients"`
	Runs       []latencyRun `json:"runs"`
}

func (x *e2eRun) run(ctx context.Context, e *env) (*e2eResult, error) {
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
	n := x.recipients
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
	for i, rate := range x.rates {
		if i == len(x.rates)-1 {
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

func (x *e2eRun) report(rp *reporter) {
	r := x.res
	if r == nil {
		return
	}
	s := report.Section{
		Title: "End to end",
		Method: fmt.Sprintf(`%s recipients are connected (one client each, in 2 client processes). A producer in the
harness sends messages with 2 recipients each at a steady rate, each carrying the time it was handed
to the Kafka client (data.sentNs); each client computes receive − send on the same clock. %s of
warm-up, then %s measured per rate; the frames of messages sent during the warm-up are not counted.
The reference of each rate is the target's rate figure where there is one.`,
			report.Thousands(int64(r.Recipients)), rp.cfg.warmup, rp.cfg.duration),
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
			rp.rep.Targets = append(rp.rep.Targets, report.Target{Goal: fmt.Sprintf("end to end p99 ≤ %.0f ms at %s messages/s", targetE2EP99, report.Thousands(targetE2ERate)),
				Measured: report.FormatValue(run.Lat.P99, "ms"), Met: p99.Met})
		}
		s.Rows = append(s.Rows, row("p50", run.Lat.P50), p99, row("max", run.Lat.Max))
		s.Notes = append(s.Notes, fmt.Sprintf("%s msg/s: %s of %s frames received after the warm-up; average busy cores (of 2): %s.",
			report.Thousands(int64(run.Rate)), report.Thousands(int64(run.Received)), report.Thousands(int64(run.Expected)), coresText(run.Cores)))
		series = append(series, report.Series{Name: run.Name, MS: run.Samples})
	}
	rp.chart(&s, "e2e-latency", func(p string) error { return report.CDFChart(p, "Produce → WebSocket receive", series) })
	rp.rep.Sections = append(rp.rep.Sections, s)
}
