package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/bench/report"
	"github.com/signal-notify/signal/internal/event"
)

// The ingest scenario: a backlog of N messages drained by serve, against a
// raw COPY of the identical rows and the seed's one-at-a-time shape.
func init() {
	register(&scenario{name: "ingest", order: 10,
		summary: "a backlog of N messages into PostgreSQL, against COPY and the seed's one-at-a-time shape",
		setup: func(fs *flag.FlagSet) run {
			x := &ingestRun{}
			fs.IntVar(&x.n, "n", 200000, "ingest: messages in the backlog (2 recipients each)")
			fs.IntVar(&x.seedN, "seed-n", 5000, "ingest: messages for the seed-shape reference")
			fs.IntVar(&x.runs, "ingest-runs", 2, "ingest: runs of Signal and of COPY, alternating (the best of each counts)")
			return x
		}})
}

// Targets of the issue, on this 2-core machine (targetCopyRatio: big-org too).
const (
	targetCopyRatio = 0.8
	targetSeedRatio = 15
)

type ingestRun struct {
	n, seedN, runs int
	res            *ingestResult
}

func (x *ingestRun) check() error {
	if x.n < 1 || x.seedN < 1 || x.runs < 1 {
		return errors.New("-n, -seed-n and -ingest-runs must be positive")
	}
	return nil
}

func (x *ingestRun) measure(ctx context.Context, e *env) (err error) {
	x.res, err = x.run(ctx, e)
	return err
}

func (x *ingestRun) results() map[string]any { return map[string]any{"ingest": x.res} }

func (x *ingestRun) report(rp *reporter) {
	r := x.res
	if r == nil {
		return
	}
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
	rp.chart(&s, "ingest-throughput", func(p string) error {
		return report.BarChart(p, "Ingest throughput (messages/s, 2 rows each)", "messages/s", []report.Bar{
			{Label: "Signal", Value: r.SignalRate}, {Label: "raw COPY", Value: r.CopyRate}, {Label: "seed shape", Value: r.SeedRate}})
	})
	rp.rep.Sections = append(rp.rep.Sections, s)
	rp.rep.Targets = append(rp.rep.Targets,
		report.Target{Goal: fmt.Sprintf("ingest ≥ %.1f × the raw COPY rate", targetCopyRatio),
			Measured: fmt.Sprintf("%s vs %s: %s", report.FormatValue(r.SignalRate, "msg/s"), report.FormatValue(r.CopyRate, "msg/s"), report.FormatRatio(copyRatio)),
			Met:      report.AtLeast(copyRatio, targetCopyRatio)},
		report.Target{Goal: fmt.Sprintf("ingest ≥ %d × the one-at-a-time shape", targetSeedRatio),
			Measured: fmt.Sprintf("%s vs %s: %s", report.FormatValue(r.SignalRate, "msg/s"), report.FormatValue(r.SeedRate, "msg/s"), report.FormatRatio(seedRatio)),
			Met:      report.AtLeast(seedRatio, targetSeedRatio)})
}

type ingestResult struct {
	Messages int `json:"messages"`
	Rows     int `json:"rows"`
	// Signal: from the first batch's transaction start (min created_at) to
	// the moment the harness saw every offset committed.
	SignalSeconds float64 `json:"signalSeconds"`
	// SignalWallSeconds: from starting the process, group join included.
	SignalWallSeconds float64 `json:"signalWallSeconds"`
	SignalRate        float64 `json:"signalRate"`
	DeadLetters       int     `json:"deadLetters"`
	CopySeconds       float64 `json:"copySeconds"`
	CopyRate          float64 `json:"copyRate"`
	SeedMessages      int     `json:"seedMessages"`
	SeedSeconds       float64 `json:"seedSeconds"`
	SeedRate          float64 `json:"seedRate"`
	ProduceSeconds    float64 `json:"produceSeconds"`
	// SignalCores: average busy cores while Signal drained the backlog.
	SignalCores map[string]float64 `json:"signalCores,omitempty"`
	// Every run's rate (messages/s); the best is the figure.
	SignalRuns []float64 `json:"signalRuns"`
	CopyRuns   []float64 `json:"copyRuns"`
}

// notificationColumns are the columns ingest writes; is_read, read_at and
// created_at take their defaults. seq is given by the writer (the COPY
// reference numbers the rows 1…n).
var notificationColumns = []string{"id", "seq", "recipient_id", "type", "organizer_id", "merchant_id", "actor_id", "actor",
	"content", "action_url", "data", "occurred_at", "event_key", "source_topic", "source_partition", "source_offset"}

// rowValues are the column values of one record's rows, built with the
// product's own decoder, templates and id derivation, exactly as ingest
// builds them.
func rowValues(r *event.Renderer, rec producedRecord) ([][]any, error) {
	return rowValuesFor(r, rec, nil)
}

// rowValuesFor is rowValues for the given recipients (the members of an
// org message), or the message's own when nil.
func rowValuesFor(r *event.Renderer, rec producedRecord, recipients []string) ([][]any, error) {
	d, err := event.Decode(rec.Value)
	if err != nil {
		return nil, err
	}
	if recipients == nil {
		recipients = d.Recipients
	}
	content, action, _ := r.Render(d)
	actor, _ := json.Marshal(d.Actor)
	key := d.EventKey()
	src := event.Source{Topic: rec.topicName(), Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp}
	out := make([][]any, 0, len(recipients))
	for _, rc := range recipients {
		out = append(out, []any{event.NotificationID(src, rc), int64(0), rc, d.EventType, nullable(d.OrganizerID), nullable(d.MerchantID),
			d.ActorID, json.RawMessage(actor), content, nullable(action), json.RawMessage(d.CanonicalData), d.Occurred, key,
			src.Topic, src.Partition, src.Offset})
	}
	return out, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (x *ingestRun) run(ctx context.Context, e *env) (*ingestResult, error) {
	n := x.n
	res := &ingestResult{Messages: n}
	broker, err := startBroker(e, topic)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	recs, err := preProduce(ctx, broker, n, 20000)
	if err != nil {
		return nil, err
	}
	res.ProduceSeconds = time.Since(start).Seconds()
	logf("ingest: %d messages produced in %s", n, time.Since(start).Round(time.Millisecond))

	renderer, err := event.NewRenderer(nil)
	if err != nil {
		return nil, err
	}
	var rows [][]any
	for _, rec := range recs {
		rv, err := rowValues(renderer, rec)
		if err != nil {
			return nil, fmt.Errorf("build rows: %w", err)
		}
		for _, r := range rv {
			r[1] = int64(len(rows) + 1)
			rows = append(rows, r)
		}
	}
	res.Rows = len(rows)

	// Signal and COPY alternate, each on a fresh database that is dropped
	// right after (no autovacuum of one run during the next); the best of
	// the runs is kept for each.
	for run := 1; run <= x.runs; run++ {
		name := fmt.Sprintf("bench_ingest_%d", run)
		url, err := e.database(ctx, name)
		if err != nil {
			return nil, err
		}
		sr, err := runSignalDrain(ctx, e, drainOpts{broker: broker, dbURL: url, group: fmt.Sprintf("bench-ingest-%d", run), topic: topic, records: n, rows: 2 * n})
		if err != nil {
			return nil, err
		}
		e.dropDatabase(name)
		res.SignalRuns = append(res.SignalRuns, sr.rate)
		if sr.rate > res.SignalRate {
			res.SignalRate, res.SignalSeconds, res.SignalWallSeconds, res.SignalCores = sr.rate, sr.seconds, sr.wall, sr.cores
			res.Rows, res.DeadLetters = sr.rows, sr.dead
		}

		name = fmt.Sprintf("bench_copy_%d", run)
		if url, err = e.database(ctx, name); err != nil {
			return nil, err
		}
		e.checkpoint(ctx)
		secs, err := copyRows(ctx, url, rows)
		if err != nil {
			return nil, err
		}
		e.dropDatabase(name)
		rate := float64(n) / secs
		logf("ingest: COPY of %d rows in %.2fs: %.0f messages/s", len(rows), secs, rate)
		res.CopyRuns = append(res.CopyRuns, rate)
		if rate > res.CopyRate {
			res.CopyRate, res.CopySeconds = rate, secs
		}
	}
	rows = nil
	seedURL, err := e.database(ctx, "bench_seed")
	if err != nil {
		return nil, err
	}

	// Reference 2: the seed's shape on the first records.
	e.checkpoint(ctx)
	if err := runSeedShape(ctx, broker, seedURL, min(x.seedN, n), renderer, res); err != nil {
		return nil, err
	}
	return res, nil
}

// copyRows loads rows into the notifications table with one COPY.
func copyRows(ctx context.Context, dbURL string, rows [][]any) (float64, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	t0 := time.Now()
	copied, err := conn.CopyFrom(ctx, pgx.Identifier{"notifications"}, notificationColumns, pgx.CopyFromRows(rows))
	secs := time.Since(t0).Seconds()
	if err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	if int(copied) != len(rows) {
		return 0, fmt.Errorf("copy: %d rows of %d", copied, len(rows))
	}
	return secs, nil
}

// signalRun is one drain of the backlog by serve.
type signalRun struct {
	seconds, wall, rate float64
	rows, dead          int
	cores               map[string]float64
}

// drainOpts describe one drain of a backlog by serve.
type drainOpts struct {
	broker, dbURL, group, topic string
	records, rows               int      // in the backlog; rows expected stored
	extra                       []string // more serve environment
	onDone                      func(*server)
}

func runSignalDrain(ctx context.Context, e *env, o drainOpts) (signalRun, error) {
	broker, dbURL, group, n := o.broker, o.dbURL, o.group, o.records
	var r signalRun
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return r, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, o.topic)
	if err != nil {
		return r, err
	}
	e.checkpoint(ctx)
	var s *server
	meter := newCPUMeter(map[string]func() []int{
		"signalctl serve": func() []int {
			if s == nil {
				return nil
			}
			return []int{s.pid()}
		},
		"PostgreSQL":       e.postgresPIDs,
		"harness (broker)": func() []int { return []int{os.Getpid()} },
	})
	s, err = e.serve(ctx, serveOpts{name: group, dbURL: dbURL, broker: broker, extra: append([]string{"APP_ENV_KAFKA_GROUP_ID=" + group}, o.extra...)})
	if err != nil {
		return r, err
	}
	defer s.stop()
	s.profile(ctx, 4*time.Second, group)
	timeout := time.Duration(max(120, n/500)) * time.Second
	deadline := time.Now().Add(timeout)
	var done time.Time
	for {
		committed, err := adm.FetchOffsets(ctx, group)
		if err == nil && allCommitted(ends, committed) {
			done = time.Now()
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("ingest: offsets not all committed within %s\n%s", timeout, s.logTail(10))
		}
		select {
		case <-s.proc.Done():
			return r, fmt.Errorf("ingest: serve exited: %v\n%s", s.proc.Err(), s.logTail(20))
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	r.wall = done.Sub(s.start).Seconds()
	r.cores = meter.cores()
	if o.onDone != nil {
		o.onDone(s)
	}
	s.stop()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return r, err
	}
	defer conn.Close(ctx)
	var first time.Time
	if err := conn.QueryRow(ctx, `SELECT count(*), min(created_at) FROM notifications`).Scan(&r.rows, &first); err != nil {
		return r, err
	}
	_ = conn.QueryRow(ctx, `SELECT count(*) FROM dead_letters`).Scan(&r.dead)
	r.seconds = done.Sub(first).Seconds()
	if r.seconds <= 0 || r.seconds > r.wall {
		r.seconds = r.wall
	}
	r.rate = float64(n) / r.seconds
	logf("ingest: Signal stored %d rows (%d dead letters) and committed every offset in %.2fs (%.2fs from process start): %.0f messages/s; busy cores %s",
		r.rows, r.dead, r.seconds, r.wall, r.rate, coresText(r.cores))
	if r.rows != o.rows {
		return r, fmt.Errorf("ingest: %d rows, want %d", r.rows, o.rows)
	}
	return r, nil
}

func allCommitted(ends kadm.ListedOffsets, committed kadm.OffsetResponses) bool {
	ok := true
	ends.Each(func(l kadm.ListedOffset) {
		if l.Offset == 0 {
			return
		}
		c, found := committed.Lookup(l.Topic, l.Partition)
		if !found || c.Err != nil || c.At < l.Offset {
			ok = false
		}
	})
	return ok
}

// runSeedShape consumes the first n records as the seed did: for each
// record BEGIN, one INSERT per row, COMMIT, then a synchronous offset
// commit of that record.
func runSeedShape(ctx context.Context, broker, dbURL string, n int, renderer *event.Renderer, res *ingestResult) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumerGroup("bench-seed"), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	insert := `INSERT INTO notifications (id, seq, recipient_id, type, organizer_id, merchant_id, actor_id, actor, content,
		action_url, data, occurred_at, event_key, source_topic, source_partition, source_offset)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`
	seq := int64(0)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	done := 0
	var start time.Time
	for done < n {
		fetches := cl.PollRecords(pctx, 500)
		if pctx.Err() != nil {
			return fmt.Errorf("seed shape: %d of %d records in time: %w", done, n, pctx.Err())
		}
		if err := fetches.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		for _, r := range fetches.Records() {
			if done >= n {
				break
			}
			if start.IsZero() {
				start = time.Now()
			}
			rows, err := rowValues(renderer, producedRecord{Value: r.Value, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp})
			if err != nil {
				return err
			}
			tx, err := conn.Begin(pctx)
			if err != nil {
				return err
			}
			for _, row := range rows {
				seq++
				row[1] = seq
				if _, err := tx.Exec(pctx, insert, row...); err != nil {
					_ = tx.Rollback(pctx)
					return fmt.Errorf("seed shape insert: %w", err)
				}
			}
			if err := tx.Commit(pctx); err != nil {
				return err
			}
			if err := cl.CommitRecords(pctx, r); err != nil {
				return fmt.Errorf("seed shape offset commit: %w", err)
			}
			done++
		}
	}
	res.SeedMessages = done
	res.SeedSeconds = time.Since(start).Seconds()
	res.SeedRate = float64(done) / res.SeedSeconds
	logf("ingest: seed shape handled %d messages in %.2fs: %.0f messages/s", done, res.SeedSeconds, res.SeedRate)
	return nil
}
