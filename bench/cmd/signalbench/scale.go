package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// scaleRun is one drain of the same backlog by k instances in one group.
type scaleRun struct {
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
	Messages int        `json:"messages"`
	Runs     []scaleRun `json:"runs"`
}

// runScale drains the same backlog with 1, 2, … instances sharing one
// consumer group and one database. The instances are started and have
// shared the partitions before the backlog is produced (fast: the broker is
// in the harness), so a group's rebalance is not in the figure; the time
// runs from the first row's transaction (smallest created_at) to every
// offset committed.
func runScale(ctx context.Context, e *env) (*scaleResult, error) {
	res := &scaleResult{Messages: e.cfg.scaleN}
	for k := 1; k <= e.cfg.scaleMax; k++ {
		r, err := runScaleOnce(ctx, e, k)
		if err != nil {
			return res, err
		}
		res.Runs = append(res.Runs, r)
		_ = sleepCtx(ctx, 2*time.Second)
	}
	return res, nil
}

func runScaleOnce(ctx context.Context, e *env, k int) (scaleRun, error) {
	r := scaleRun{Instances: k}
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
	n := e.cfg.scaleN
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
