package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/signal-notify/signal/bench/report"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The scale scenario: the same backlog drained by 1, 2, … instances
// sharing a consumer group and a database.
func init() {
	register(&scenario{name: "scale", order: 50,
		summary: "the same backlog drained by 1, 2 and 3 instances sharing a consumer group and a database",
		setup: func(fs *flag.FlagSet) run {
			x := &scaleRun{}
			fs.IntVar(&x.n, "scale-n", 200000, "scale: messages in the backlog (2 recipients each)")
			fs.IntVar(&x.max, "scale-max", 3, "scale: most instances (runs 1…max)")
			return x
		}})
}

type scaleRun struct {
	n, max int
	res    *scaleResult
}

func (x *scaleRun) check() error {
	if x.n < 1 || x.max < 1 || x.max > 4 {
		return errors.New("-scale-n must be positive and -scale-max in [1, 4] (the topic has 4 partitions)")
	}
	return nil
}

func (x *scaleRun) measure(ctx context.Context, e *env) (err error) {
	x.res, err = x.run(ctx, e)
	return err
}

func (x *scaleRun) results() map[string]any { return map[string]any{"scale": x.res} }

func (x *scaleRun) report(rp *reporter) {
	r := x.res
	if r == nil || len(r.Runs) == 0 {
		return
	}
	s := report.Section{
		Title: "Scale: instances draining one backlog",
		Method: fmt.Sprintf(`1 to %d `+"`signalctl serve`"+` processes in one consumer group on one database (4 partitions).
The instances start and share the partitions first; then %s messages (2 recipients each) are produced as
fast as the in-process broker takes them. The time runs from the first row's transaction (smallest
created_at) to every offset committed. The reference is one instance in the same run. Busy cores are
the averages over the drain, by process group: on this 2-core machine they say what bounds the figure.`,
			x.max, report.Thousands(int64(r.Messages))),
	}
	one := r.Runs[0].Rate
	for _, run := range r.Runs {
		row := report.Row{Figure: fmt.Sprintf("%d instance(s)", run.Instances), Value: run.Rate, Unit: "msg/s", Reference: "1 instance", RefValue: one}
		if run.Instances == 2 {
			row.Target = "≥ 1.0× one instance"
			row.Met = report.AtLeast(report.Ratio(run.Rate, one), 1.0)
			rp.rep.Targets = append(rp.rep.Targets, report.Target{Goal: "2 instances drain a backlog at ≥ 1.0× one instance",
				Measured: fmt.Sprintf("%s vs %s: %s", report.FormatValue(run.Rate, "msg/s"), report.FormatValue(one, "msg/s"), report.FormatRatio(report.Ratio(run.Rate, one))),
				Met:      row.Met})
		}
		s.Rows = append(s.Rows, row)
		s.Notes = append(s.Notes, fmt.Sprintf("%d instance(s): partitions %v, %.2f s, busy cores %s.", run.Instances, run.Partitions, run.Seconds, coresText(run.Cores)))
	}
	rp.rep.Sections = append(rp.rep.Sections, s)
}

// scaleDrain is one drain of the same backlog by k instances in one group.
type scaleDrain struct {
	Instances int     `json:"instances"`
	Seconds   float64 `json:"seconds"`
	Rate      float64 `json:"rate"` // messages/s
	Rows      int     `json:"rows"`
	// Partitions owned by each instance while it drained.
	Partitions []int `json:"partitions"`
	// Cores: average busy cores, by process group.
	Cores map[string]float64 `json:"cores,omitempty"`
}

type scaleResult struct {
	Messages int          `json:"messages"`
	Runs     []scaleDrain `json:"runs"`
}

// runScale drains the same backlog with 1, 2, … instances sharing one
// consumer group and one database. The instances are started and have
// shared the partitions before the backlog is produced (fast: the broker is
// in the harness), so a group's rebalance is not in the figure; the time
// runs from the first row's transaction (smallest created_at) to every
// offset committed.
func (x *scaleRun) run(ctx context.Context, e *env) (*scaleResult, error) {
	res := &scaleResult{Messages: x.n}
	for k := 1; k <= x.max; k++ {
		r, err := x.once(ctx, e, k)
		if err != nil {
			return res, err
		}
		res.Runs = append(res.Runs, r)
		_ = sleepCtx(ctx, 2*time.Second)
	}
	return res, nil
}

func (x *scaleRun) once(ctx context.Context, e *env, k int) (scaleDrain, error) {
	r := scaleDrain{Instances: k}
	t := fmt.Sprintf("bench-scale-%d", k)
	broker, err := startBroker(e, t)
	if err != nil {
		return r, err
	}
	name := fmt.Sprintf("bench_scale_%d", k)
	dbURL, err := e.database(ctx, name)
	if err != nil {
		return r, err
	}
	defer e.dropDatabase(name)
	group := t
	var servers []*server
	for i := 0; i < k; i++ {
		s, err := e.serve(ctx, serveOpts{name: fmt.Sprintf("scale-%d-%d", k, i), dbURL: dbURL, broker: broker,
			extra: []string{"APP_ENV_KAFKA_GROUP_ID=" + group, "SIGNAL_KAFKA_TOPIC=" + t}})
		if err != nil {
			return r, err
		}
		defer s.stop()
		servers = append(servers, s)
	}
	// Every instance owns partitions (all 4 of them shared out) before the
	// backlog exists.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r.Partitions = r.Partitions[:0]
		total, all := 0, true
		for _, s := range servers {
			n := partitionsOwned(s)
			r.Partitions = append(r.Partitions, n)
			total += n
			all = all && n > 0
		}
		if all && total == 4 {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("scale: %d instances did not share the partitions within 60s: %v", k, r.Partitions)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return r, err
		}
	}
	e.checkpoint(ctx)
	meter := newCPUMeter(map[string]func() []int{
		"signalctl serve (all)": func() []int {
			var pids []int
			for _, s := range servers {
				pids = append(pids, s.pid())
			}
			return pids
		},
		"PostgreSQL":                 e.postgresPIDs,
		"harness (broker, producer)": func() []int { return []int{os.Getpid()} },
	})
	n := x.n
	if _, err := preProduceTopic(ctx, broker, t, n, 20000); err != nil {
		return r, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return r, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, t)
	if err != nil {
		return r, err
	}
	timeout := time.Duration(max(120, n/500)) * time.Second
	deadline = time.Now().Add(timeout)
	var done time.Time
	for {
		committed, err := adm.FetchOffsets(ctx, group)
		if err == nil && allCommitted(ends, committed) {
			done = time.Now()
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("scale: offsets not all committed within %s", timeout)
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return r, err
		}
	}
	r.Cores = meter.cores()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return r, err
	}
	defer conn.Close(ctx)
	var first time.Time
	if err := conn.QueryRow(ctx, `SELECT count(*), min(created_at) FROM notifications`).Scan(&r.Rows, &first); err != nil {
		return r, err
	}
	r.Seconds = done.Sub(first).Seconds()
	r.Rate = float64(n) / r.Seconds
	logf("scale: %d instance(s) (partitions %v) stored %d rows in %.2fs: %.0f messages/s; busy cores %s",
		k, r.Partitions, r.Rows, r.Seconds, r.Rate, coresText(r.Cores))
	if r.Rows != 2*n {
		return r, fmt.Errorf("scale: %d rows, want %d", r.Rows, 2*n)
	}
	return r, nil
}

// partitionsOwned asks an instance's /status how many partitions it owns.
func partitionsOwned(s *server) int {
	code, body := httpGetAuth(s.url()+"/status", apiKey, 2*time.Second)
	if code != 200 {
		return 0
	}
	var st struct {
		Consumer struct {
			PartitionsOwned json.Number `json:"partitionsOwned"`
		} `json:"consumer"`
	}
	if json.Unmarshal(body, &st) != nil {
		return 0
	}
	n, _ := strconv.Atoi(st.Consumer.PartitionsOwned.String())
	return n
}
