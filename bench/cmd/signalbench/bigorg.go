package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/bench/report"
	"github.com/signal-notify/signal/internal/event"
)

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

func runBigOrg(ctx context.Context, e *env) (*bigOrgResult, error) {
	res := &bigOrgResult{}
	for _, m := range e.cfg.bigOrgSizes {
		size := bigOrgSize{Members: m, Events: e.cfg.bigOrgEvents}
		if err := bigOrgDrain(ctx, e, &size); err != nil {
			return res, err
		}
		lat, err := bigOrgLatencyRun(ctx, e, m, 0)
		if err != nil {
			return res, err
		}
		size.Latency = lat
		if e.cfg.bigOrgUnbounded {
			if size.Unbounded, err = bigOrgLatencyRun(ctx, e, m, unboundedRows); err != nil {
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

// bigOrgLatencyRun connects every member, then produces events to the
// organizer one at a time and times, for each, the first and the last
// member to receive it. maxRows 0 keeps serve's default.
func bigOrgLatencyRun(ctx context.Context, e *env, m, maxRows int) (*bigOrgLatency, error) {
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
	res := &bigOrgLatency{Events: e.cfg.bigOrgLatencyEvents}
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
