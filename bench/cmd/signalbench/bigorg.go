package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/bench/report"
	"github.com/signal-notify/signal/internal/event"
)

func init() {
	register(&scenario{name: "big-org", order: 70,
		summary: "events to organizers of 1,000 and 10,000 members: rows/s against COPY, first and last push, peak memory",
		setup: func(fs *flag.FlagSet) run {
			x := &bigOrgRun{}
			fs.Func("bigorg-sizes", "big-org: members of each organizer measured (default 1000,10000)", x.setSizes)
			x.sizes = []int{1000, 10000}
			fs.IntVar(&x.events, "bigorg-events", 20, "big-org: events in the backlog drained against COPY, per organizer")
			fs.IntVar(&x.latencyEvents, "bigorg-latency-events", 10, "big-org: events sent one at a time to the connected members")
			fs.BoolVar(&x.unbounded, "bigorg-unbounded", true, "big-org: also time the events with one transaction per batch (ingest.max_rows_per_tx 1048576)")
			return x
		}})
}

// targetFirstPushMs is the target, on this 2-core machine.
const targetFirstPushMs = 50.0

type bigOrgRun struct {
	sizes                 []int
	events, latencyEvents int
	unbounded             bool
	res                   *bigOrgResult
}

func (x *bigOrgRun) setSizes(v string) error {
	sizes, err := parseRates("-bigorg-sizes", v)
	if err != nil {
		return err
	}
	x.sizes = x.sizes[:0]
	for _, n := range sizes {
		x.sizes = append(x.sizes, int(n))
	}
	return nil
}

func (x *bigOrgRun) check() error {
	if x.events < 1 || x.latencyEvents < 1 {
		return errors.New("-bigorg-events and -bigorg-latency-events must be positive")
	}
	return nil
}

func (x *bigOrgRun) measure(ctx context.Context, e *env) (err error) {
	x.res, err = x.run(ctx, e)
	return err
}

func (x *bigOrgRun) results() map[string]any { return map[string]any{"bigOrg": x.res} }

// bigOrgResult is the big-org scenario: events to organizers of many
// members (issue 12).
type bigOrgResult struct {
	Sizes []bigOrgSize `json:"sizes"`
}

type bigOrgSize struct {
	Members int `json:"members"`
	// A backlog of Events events to the organizer, drained by serve
	// (no client connected), against a raw COPY of the same rows.
	Events        int                `json:"events"`
	Rows          int                `json:"rows"`
	Transactions  int                `json:"transactions"`
	SignalSeconds float64            `json:"signalSeconds"`
	SignalRate    float64            `json:"signalRowsPerSecond"`
	CopySeconds   float64            `json:"copySeconds"`
	CopyRate      float64            `json:"copyRowsPerSecond"`
	DrainPeakKiB  float64            `json:"drainPeakRssKiB"`
	DrainCores    map[string]float64 `json:"drainCores,omitempty"`
	// Events one at a time, every member connected: the default settings,
	// and one transaction per batch (ingest.max_rows_per_tx 1,048,576).
	Latency   *bigOrgLatency `json:"latency"`
	Unbounded *bigOrgLatency `json:"unbounded,omitempty"`
}

// bigOrgLatency is produce → first and last frame of each event.
type bigOrgLatency struct {
	Events     int            `json:"events"`
	Expected   int            `json:"expected"`
	Received   int            `json:"received"`
	First      report.Latency `json:"firstMs"`
	Last       report.Latency `json:"lastMs"`
	PeakRSSKiB float64        `json:"peakRssKiB"`
	FirstMs    []float64      `json:"-"`
	LastMs     []float64      `json:"-"`
}

// unboundedRows is ingest.max_rows_per_tx that never splits a batch.
const unboundedRows = 1 << 20

// orgMessage is an event to organizer org; sentNs, when not zero, is put in
// data so clients can compute the delivery latency.
func orgMessage(i int, org string, sentNs int64) []byte {
	s := fmt.Sprintf(`{"eventType":"TICKET_SOLD","recipientScope":"org","actorId":"a%d","actor":{"id":"a%d","name":"Alice Martin","type":"user"},`+
		`"organizerId":%q,"data":{"ticket":{"id":"t-%d","event":"Gold night %d","amount":"125.00","currency":"EUR"}`, i%500, i%500, org, i, i)
	if sentNs != 0 {
		s += `,"sentNs":` + strconv.FormatInt(sentNs, 10)
	}
	return []byte(s + `},"occurredAt":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`)
}

func memberIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "b" + strconv.Itoa(i)
	}
	return out
}

func (x *bigOrgRun) run(ctx context.Context, e *env) (*bigOrgResult, error) {
	res := &bigOrgResult{}
	for _, m := range x.sizes {
		size := bigOrgSize{Members: m, Events: x.events}
		if err := bigOrgDrain(ctx, e, &size); err != nil {
			return res, err
		}
		lat, err := x.latency(ctx, e, m, 0)
		if err != nil {
			return res, err
		}
		size.Latency = lat
		if x.unbounded {
			if size.Unbounded, err = x.latency(ctx, e, m, unboundedRows); err != nil {
				return res, err
			}
		}
		res.Sizes = append(res.Sizes, size)
	}
	return res, nil
}

// bigOrgDatabase makes a database whose organizer org has the members.
func bigOrgDatabase(ctx context.Context, e *env, name, org string, members []string) (string, error) {
	url, err := e.database(ctx, name)
	if err != nil {
		return "", err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	rows := make([][]any, len(members))
	for i, r := range members {
		rows[i] = []any{"org", org, r}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"memberships"}, []string{"scope", "scope_id", "recipient_id"}, pgx.CopyFromRows(rows)); err != nil {
		return "", fmt.Errorf("load members: %w", err)
	}
	_, err = conn.Exec(ctx, "ANALYZE memberships")
	return url, err
}

// bigOrgDrain measures rows/s of a backlog of events to one organizer,
// against a raw COPY of the same rows into an empty table.
func bigOrgDrain(ctx context.Context, e *env, size *bigOrgSize) error {
	m, n := size.Members, size.Events
	org := "big-" + strconv.Itoa(m)
	topicName := "bigorg-" + strconv.Itoa(m)
	broker, err := startBroker(e, topicName)
	if err != nil {
		return err
	}
	members := memberIDs(m)
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topicName))
	if err != nil {
		return err
	}
	var recs []producedRecord
	for i := 0; i < n; i++ {
		r, err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(org), Value: orgMessage(i, org, 0)}).First()
		if err != nil {
			cl.Close()
			return fmt.Errorf("produce: %w", err)
		}
		recs = append(recs, producedRecord{Value: r.Value, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp})
	}
	cl.Close()
	size.Rows = n * m

	name := fmt.Sprintf("bench_bigorg_%d", m)
	url, err := bigOrgDatabase(ctx, e, name, org, members)
	if err != nil {
		return err
	}
	group := "bench-bigorg-" + strconv.Itoa(m)
	sr, err := runSignalDrain(ctx, e, drainOpts{broker: broker, dbURL: url, group: group, topic: topicName, rows: size.Rows, records: n,
		extra: []string{"SIGNAL_KAFKA_TOPIC=" + topicName}, onDone: func(s *server) {
			size.DrainPeakKiB, _ = peakRSSKiB(s.pid())
		}})
	if err != nil {
		return err
	}
	size.SignalSeconds, size.DrainCores = sr.seconds, sr.cores
	size.SignalRate = float64(size.Rows) / sr.seconds
	if conn, err := pgx.Connect(ctx, url); err == nil {
		_ = conn.QueryRow(ctx, `SELECT count(DISTINCT seq >> 20) FROM notifications`).Scan(&size.Transactions)
		conn.Close(ctx)
	}
	e.dropDatabase(name)

	renderer, err := event.NewRenderer(nil)
	if err != nil {
		return err
	}
	var rows [][]any
	for _, rec := range recs {
		rec.topic = topicName
		rv, err := rowValuesFor(renderer, rec, members)
		if err != nil {
			return err
		}
		for _, r := range rv {
			r[1] = int64(len(rows) + 1) // seq, as the writer gives it
			rows = append(rows, r)
		}
	}
	name = fmt.Sprintf("bench_bigorg_copy_%d", m)
	if url, err = e.database(ctx, name); err != nil {
		return err
	}
	e.checkpoint(ctx)
	if size.CopySeconds, err = copyRows(ctx, url, rows); err != nil {
		return err
	}
	e.dropDatabase(name)
	size.CopyRate = float64(len(rows)) / size.CopySeconds
	logf("big-org %d: Signal %.0f rows/s (%d rows in %d transactions, %.2fs, peak RSS %.0f MiB), raw COPY %.0f rows/s (%.2fs): %.2f×",
		m, size.SignalRate, size.Rows, size.Transactions, size.SignalSeconds, size.DrainPeakKiB/1024, size.CopyRate, size.CopySeconds, size.SignalRate/size.CopyRate)
	return nil
}

// latency connects every member, then produces events to the
// organizer one at a time and times, for each, the first and the last
// member to receive it. maxRows 0 keeps serve's default.
func (x *bigOrgRun) latency(ctx context.Context, e *env, m, maxRows int) (*bigOrgLatency, error) {
	label := "default"
	var extra []string
	if maxRows > 0 {
		label = "unbounded"
		extra = append(extra, "SIGNAL_INGEST_MAX_ROWS_PER_TX="+strconv.Itoa(maxRows))
	}
	org := "big-" + strconv.Itoa(m)
	topicName := fmt.Sprintf("bigorg-lat-%d-%s", m, label)
	broker, err := startBroker(e, topicName)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("bench_bigorg_lat_%d_%s", m, label)
	url, err := bigOrgDatabase(ctx, e, name, org, memberIDs(m))
	if err != nil {
		return nil, err
	}
	defer e.dropDatabase(name)
	s, err := e.serve(ctx, serveOpts{name: "bigorg-" + label + "-" + strconv.Itoa(m), dbURL: url, broker: broker,
		extra: append(extra, "SIGNAL_KAFKA_TOPIC="+topicName, "APP_ENV_KAFKA_GROUP_ID=bench-bigorg-lat")})
	if err != nil {
		return nil, err
	}
	defer s.stop()
	p, st, err := startPool(ctx, e, poolOpts{name: fmt.Sprintf("big-org %d (%s)", m, label), url: s.wsURL(), n: m, perProc: 5000, minProcs: 1, prefix: "b"})
	if err != nil {
		return nil, err
	}
	defer p.close()
	if st.Fail > 0 {
		return nil, fmt.Errorf("big-org: %d clients failed to connect: %s", st.Fail, st.Err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topicName), kgo.ProducerLinger(0))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	res := &bigOrgLatency{Events: x.latencyEvents}
	p.takeNotif()
	for i := 0; i < res.Events; i++ {
		sent := time.Now().UnixNano()
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(org), Value: orgMessage(i, org, sent)}).FirstErr(); err != nil {
			return nil, fmt.Errorf("produce: %w", err)
		}
		res.Expected += m
		deadline := time.Now().Add(60 * time.Second)
		for p.notifCount() < res.Expected && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		_ = sleepCtx(ctx, 300*time.Millisecond) // let the server settle between events
	}
	byEvent := map[int64][]int64{}
	for _, smp := range p.takeNotif() {
		byEvent[smp.s] = append(byEvent[smp.s], smp.r)
		res.Received++
	}
	sentTimes := make([]int64, 0, len(byEvent))
	for s := range byEvent {
		sentTimes = append(sentTimes, s)
	}
	sort.Slice(sentTimes, func(i, j int) bool { return sentTimes[i] < sentTimes[j] })
	for _, sent := range sentTimes {
		rs := byEvent[sent]
		lo, hi := rs[0], rs[0]
		for _, r := range rs {
			lo, hi = min(lo, r), max(hi, r)
		}
		res.FirstMs = append(res.FirstMs, float64(lo-sent)/1e6)
		res.LastMs = append(res.LastMs, float64(hi-sent)/1e6)
	}
	res.First, res.Last = report.Summarize(res.FirstMs), report.Summarize(res.LastMs)
	res.PeakRSSKiB, _ = peakRSSKiB(s.pid())
	logf("big-org %d (%s): %d of %d frames; first push p50 %.1f ms max %.1f ms; last push p50 %.0f ms max %.0f ms; peak RSS %.0f MiB",
		m, label, res.Received, res.Expected, res.First.P50, res.First.Max, res.Last.P50, res.Last.Max, res.PeakRSSKiB/1024)
	return res, nil
}

// peakRSSKiB is the process's peak resident set (VmHWM) in KiB.
func peakRSSKiB(pid int) (float64, error) { return statusKiB(pid, "VmHWM:") }

func (x *bigOrgRun) report(rp *reporter) {
	r := x.res
	if r == nil || len(r.Sizes) == 0 {
		return
	}
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
bounded by rows).`, sizesText(r), x.events, x.latencyEvents),
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
			rp.rep.Targets = append(rp.rep.Targets,
				report.Target{Goal: fmt.Sprintf("an event to %s members is stored at ≥ %.1f × the raw COPY rate", m, targetCopyRatio),
					Measured: fmt.Sprintf("%s vs %s: %s", report.FormatValue(z.SignalRate, "rows/s"), report.FormatValue(z.CopyRate, "rows/s"), report.FormatRatio(ratio)),
					Met:      rate.Met})
			if z.Latency != nil {
				rp.rep.Targets = append(rp.rep.Targets, report.Target{Goal: fmt.Sprintf("its first push ≤ %.0f ms after the event (median)", targetFirstPushMs),
					Measured: report.FormatValue(z.Latency.First.P50, "ms"), Met: first})
			}
		}
	}
	if len(series) > 0 {
		rp.chart(&s, "bigorg-latency", func(p string) error {
			return report.CDFChart(p, "Event to a big organizer: produce → first and last member", series)
		})
	}
	rp.rep.Sections = append(rp.rep.Sections, s)
}

func sizesText(r *bigOrgResult) string {
	var parts []string
	for _, z := range r.Sizes {
		parts = append(parts, report.Thousands(int64(z.Members)))
	}
	return strings.Join(parts, " and ")
}
