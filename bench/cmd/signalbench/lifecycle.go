package main

// The lifecycle scenario (issue 25): POST /notifications at a steady rate
// (p99, rows/s) against Kafka ingest of the same rows, and what expiresAt
// and groupKey cost ingest against the same backlog without them.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/bench/report"
)

func init() {
	register(&scenario{name: "lifecycle", order: 130,
		summary: "POST /notifications at 1,000 req/s against Kafka ingest of the same rows; ingest with expiresAt and groupKey against without",
		setup: func(fs *flag.FlagSet) run {
			x := &lifecycleRun{}
			fs.Float64Var(&x.rate, "rest-rate", 1000, "lifecycle: POST /notifications per second")
			fs.DurationVar(&x.duration, "rest-duration", 10*time.Second, "lifecycle: how long REST creates are sent")
			fs.IntVar(&x.n, "lifecycle-n", 20000, "lifecycle: messages of each ingest backlog (2 recipients each)")
			return x
		}})
}

type lifecycleRun struct {
	rate     float64
	duration time.Duration
	n        int
	res      *lifecycleResult
}

type lifecycleResult struct {
	Rate        float64            `json:"rate"`
	Requests    int                `json:"requests"`
	Errors      int                `json:"errors"`
	Latency     report.Latency     `json:"latencyMs"`
	RESTRows    float64            `json:"restRowsPerSecond"`
	KafkaRows   float64            `json:"kafkaRowsPerSecond"`
	IngestRates map[string]float64 `json:"ingestRowsPerSecond"` // plain, expiry, grouping
}

func (x *lifecycleRun) check() error {
	if x.rate <= 0 || x.duration <= 0 || x.n < 1 {
		return errors.New("-rest-rate, -rest-duration and -lifecycle-n must be positive")
	}
	return nil
}

func (x *lifecycleRun) results() map[string]any { return map[string]any{"lifecycle": x.res} }

func (x *lifecycleRun) measure(ctx context.Context, e *env) error {
	res := &lifecycleResult{Rate: x.rate, IngestRates: map[string]float64{}}
	x.res = res
	if err := e.scoped(ctx, "lifecycle-rest", func(ctx context.Context, e *env) error { return x.rest(ctx, e, res) }); err != nil {
		return err
	}
	for _, kind := range []string{"kafka", "plain", "expiry", "grouping"} {
		err := e.scoped(ctx, "lifecycle-"+kind, func(ctx context.Context, e *env) error {
			n := x.n
			if kind == "kafka" {
				n = res.Requests
			}
			rate, err := drainRate(ctx, e, kind, n)
			if kind == "kafka" {
				res.KafkaRows = rate
			} else {
				res.IngestRates[kind] = rate
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// rest sends POST /notifications at x.rate for x.duration (each request
// its own key, 2 recipients) and measures each answer's latency, then the
// rows made per second of the run.
func (x *lifecycleRun) rest(ctx context.Context, e *env, res *lifecycleResult) error {
	broker, err := startBroker(e, topic)
	if err != nil {
		return err
	}
	db, err := e.database(ctx, "lifecycle_rest")
	if err != nil {
		return err
	}
	s, err := e.serve(ctx, serveOpts{name: "lifecycle-rest", dbURL: db, broker: broker})
	if err != nil {
		return err
	}
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	total := int(x.rate * x.duration.Seconds())
	lat := make([]float64, total)
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(float64(i) / x.rate * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			t0 := time.Now()
			if !postNotification(cl, s.url(), "k-"+strconv.Itoa(i), message(i, [2]string{"u" + strconv.Itoa(i%1000), "u" + strconv.Itoa((i+1)%1000)}, 0)) {
				errs.Add(1)
			}
			lat[i] = float64(time.Since(t0).Microseconds()) / 1000
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.Requests, res.Errors = total, int(errs.Load())
	res.Latency = report.Summarize(lat)
	res.RESTRows = float64(2*(total-res.Errors)) / elapsed.Seconds()
	logf("lifecycle: %d REST creates at %.0f/s: p99 %.1f ms, %d errors", total, x.rate, res.Latency.P99, res.Errors)
	return nil
}

func postNotification(cl *http.Client, base, key string, body []byte) bool {
	req, err := http.NewRequest("POST", base+"/notifications", bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Idempotency-Key", key)
	resp, err := cl.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusAccepted
}

// drainRate produces n messages of kind (plain, with expiresAt, with
// groupKey) while no consumer runs, then measures how fast a serve stores
// their rows (rows/s, from its start to the last row).
func drainRate(ctx context.Context, e *env, kind string, n int) (float64, error) {
	broker, err := startBroker(e, topic)
	if err != nil {
		return 0, err
	}
	db, err := e.database(ctx, "lifecycle_"+kind)
	if err != nil {
		return 0, err
	}
	if err := produceKind(ctx, broker, kind, n); err != nil {
		return 0, err
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	e.checkpoint(ctx)
	start := time.Now()
	if _, err := e.serve(ctx, serveOpts{name: "lifecycle-" + kind, dbURL: db, broker: broker}); err != nil {
		return 0, err
	}
	want := 2 * n // one row per recipient; grouping: every message counted in its item
	sql := `SELECT coalesce(sum(coalesce(group_count, 1)), 0) FROM notifications`
	for {
		var got int
		if err := conn.QueryRow(ctx, sql).Scan(&got); err != nil {
			return 0, err
		}
		if got >= want {
			break
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return 0, err
		}
	}
	rate := float64(want) / time.Since(start).Seconds()
	logf("lifecycle: %s ingest of %d rows: %.0f rows/s (from serve's start)", kind, want, rate)
	return rate, nil
}

// produceKind pre-produces n messages; expiry and grouping add their field.
func produceKind(ctx context.Context, broker, kind string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	expires := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		v := message(i, [2]string{"u" + strconv.Itoa(i%1000), "u" + strconv.Itoa((i+1)%1000)}, 0)
		switch kind {
		case "expiry":
			v = append(v[:len(v)-1], `,"expiresAt":"`+expires+`"}`...)
		case "grouping":
			v = append(v[:len(v)-1], `,"groupKey":"payments-`+organizer(i)+`"}`...)
		}
		recs = append(recs, &kgo.Record{Key: []byte(organizer(i)), Value: v})
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

func (x *lifecycleRun) report(rp *reporter) {
	r := x.res
	if r == nil {
		return
	}
	s := report.Section{
		Title: "Notification lifecycle",
		Method: fmt.Sprintf(`REST: POST /notifications at %s requests/s for %s (2 recipients each, each request its
own Idempotency-Key), latency from send to the 202; rows/s over the run, against a serve draining a Kafka
backlog of as many messages (rows/s from its start to the last row). Ingest cost: backlogs of %s messages
(2 recipients each) drained by a fresh serve and database, plain, with expiresAt (a day ahead) and with a
groupKey per organizer (so most rows join an item).`,
			report.Thousands(int64(r.Rate)), x.duration, report.Thousands(int64(x.n))),
		Rows: []report.Row{
			{Figure: "REST create p99", Value: r.Latency.P99, Unit: "ms"},
			{Figure: "REST create rows", Value: r.RESTRows, Unit: "rows/s", Reference: "Kafka ingest", RefValue: r.KafkaRows},
			{Figure: "ingest with expiresAt", Value: r.IngestRates["expiry"], Unit: "rows/s", Reference: "plain", RefValue: r.IngestRates["plain"]},
			{Figure: "ingest with groupKey", Value: r.IngestRates["grouping"], Unit: "rows/s", Reference: "plain", RefValue: r.IngestRates["plain"]},
		},
		Notes: []string{fmt.Sprintf("%d of %d REST requests failed.", r.Errors, r.Requests)},
	}
	rp.rep.Sections = append(rp.rep.Sections, s)
}
