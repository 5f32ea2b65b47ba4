package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/signal-notify/signal/bench/report"
)

// The cluster scenario: delivery to clients on a second instance, relayed
// through PostgreSQL, at rising rates.
func init() {
	register(&scenario{name: "cluster", order: 40,
		summary: "delivery to clients on a second instance (relayed through PostgreSQL) at rising rates",
		setup: func(fs *flag.FlagSet) run {
			x := &clusterRun{}
			ratesVar(fs, &x.rates, "cluster-rates", "1000,2000,5000,10000", "cluster: rising rates in messages/s (the relay's ceiling)")
			fs.IntVar(&x.clients, "cluster-clients", 200, "cluster: recipients, each with a client on both instances")
			fs.StringVar(&x.baselineBin, "baseline-bin", "", "cluster: a second signalctl binary (e.g. built from an older commit) measured in the same run")
			return x
		}})
}

type clusterRun struct {
	rates       []float64
	clients     int
	baselineBin string
	res         *clusterResult
}

func (x *clusterRun) check() error {
	if x.clients < 2 {
		return errors.New("-cluster-clients must be at least 2")
	}
	return nil
}

func (x *clusterRun) measure(ctx context.Context, e *env) (err error) {
	x.res, err = x.run(ctx, e)
	return err
}

func (x *clusterRun) results() map[string]any { return map[string]any{"cluster": x.res} }

// clusterRate is one rate of the cluster scenario.
type clusterRate struct {
	Rate  float64    `json:"rate"`
	Local latencyRun `json:"local"` // clients on A, the consuming instance
	Cross latencyRun `json:"cross"` // clients on B: relayed through PostgreSQL
}

type clusterResult struct {
	Clients int           `json:"clients"` // per instance
	Runs    []clusterRate `json:"runs"`
	// Baseline: the same with -baseline-bin, in the same run.
	BaselineBin string        `json:"baselineBin,omitempty"`
	Baseline    []clusterRate `json:"baseline,omitempty"`
}

// runCluster: two serve processes on one database. A consumes the topic;
// B consumes another, empty topic (as internal/e2e/cluster_test.go does),
// so every notification its clients get was consumed by A and relayed.
// Every recipient has a client on each instance: both are measured in the
// same run, at each rate of -cluster-rates (where the cross-instance p99
// bends is the relay's ceiling). With -baseline-bin the whole scenario runs
// again with that binary.
func (x *clusterRun) run(ctx context.Context, e *env) (*clusterResult, error) {
	res := &clusterResult{Clients: x.clients}
	var err error
	if res.Runs, err = x.runWith(ctx, e, e.bin, "cluster"); err != nil {
		return res, err
	}
	if b := x.baselineBin; b != "" {
		res.BaselineBin = b
		if res.Baseline, err = x.runWith(ctx, e, b, "cluster_baseline"); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (x *clusterRun) runWith(ctx context.Context, e *env, bin, name string) ([]clusterRate, error) {
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
	n := x.clients
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
	var out []clusterRate
	for _, rate := range x.rates {
		logf("%s (%s) at %.0f msg/s", name, bin, rate)
		runs, err := measureRate(ctx, e, prod, rate, recipientsOf("c", n), pa, pb)
		if err != nil {
			return out, err
		}
		out = append(out, clusterRate{Rate: rate, Local: runs[0], Cross: runs[1]})
		_ = sleepCtx(ctx, 2*time.Second)
	}
	return out, nil
}

func (x *clusterRun) report(rp *reporter) {
	r := x.res
	if r == nil || len(r.Runs) == 0 {
		return
	}
	s := report.Section{
		Title: "Two instances: the relay",
		Method: fmt.Sprintf(`Two `+"`signalctl serve`"+` processes on one database. Instance A consumes the topic; instance B
consumes another, empty topic (as internal/e2e/cluster_test.go does), so whatever B's clients receive
was consumed by A and relayed through PostgreSQL (NOTIFY inside A's transactions, in seq order below the
horizon). Each of %s recipients has a client on A and one on B; messages (2 recipients each, so twice as
many frames per instance) at each rate for %s after %s of warm-up. The reference of the cross-instance
figures is the same notifications' delivery to the clients on A; where the cross-instance p99 bends as
the rate rises is the relay's ceiling.`,
			report.Thousands(int64(r.Clients)), rp.cfg.duration, rp.cfg.warmup),
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
	rp.chart(&s, "cluster-latency", func(p string) error {
		return report.CDFChart(p, fmt.Sprintf("Two instances at %s msg/s: produce → receive", report.Thousands(int64(first.Rate))), series)
	})
	rp.rep.Sections = append(rp.rep.Sections, s)
}
