package main

// The poison scenario (issue 20): valid traffic at a steady rate, with one
// hostile record per 1,000 valid ones — each kind issue 20 found, in turn —
// against the same traffic without them.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/bench/report"
)

func init() {
	register(&scenario{name: "poison", order: 110,
		summary: "valid traffic at 2,000 msg/s with one hostile record per 1,000 (each kind of issue 20), against none",
		setup: func(fs *flag.FlagSet) run {
			x := &poisonRun{}
			fs.IntVar(&x.rounds, "poison-rounds", 2, "poison: pairs of phases (without, then with hostile records) of -warmup + -duration each")
			fs.IntVar(&x.recipients, "poison-recipients", 1000, "poison: connected recipients (one client each)")
			return x
		}})
}

type poisonRun struct {
	rounds, recipients int
	res                *poisonResult
}

func (x *poisonRun) check() error {
	if x.rounds < 1 || x.recipients < 2 {
		return errors.New("-poison-rounds must be at least 1, -poison-recipients at least 2")
	}
	return nil
}

func (x *poisonRun) measure(ctx context.Context, e *env) (err error) {
	x.res, err = runPoison(ctx, e, x.rounds, x.recipients)
	return err
}

func (x *poisonRun) results() map[string]any { return map[string]any{"poison": x.res} }

func (x *poisonRun) report(rp *reporter) {
	if x.res == nil {
		return
	}
	rp.rep.Sections = append(rp.rep.Sections, poisonSection(rp, x.res, x.rounds))
}

// Targets of the poison scenario.
const (
	poisonRate      = 2000 // valid messages per second
	poisonEvery     = 1000 // one hostile record per this many valid ones
	targetPoisonP99 = 1.10 // the valid records' p99 with the hostile ones, over without
	// targetPoisonRSSMiB is the documented bound of the server's memory
	// while hostile records arrive (docs/operations.md, "What one record
	// may cost": the property test holds the process's heap under it).
	targetPoisonRSSMiB = 512
)

// poisonKind is one kind of hostile record and the dead letter it must
// become.
type poisonKind struct {
	name   string
	reason string
	record func(i int) *kgo.Record
}

func poisonKinds() []poisonKind {
	msg := func(rcpts []string, data string) []byte {
		quoted := make([]string, len(rcpts))
		for i, r := range rcpts {
			quoted[i] = `"` + r + `"`
		}
		return []byte(`{"eventType":"PAYMENT_SUCCESS","recipientScope":"users","actorId":"a1","actor":{"id":"a1","name":"Mallory","type":"user"},` +
			`"organizerId":"org-1","recipientIds":[` + strings.Join(quoted, ",") + `],"data":{"s":"` + data + `"},"occurredAt":"` +
			time.Now().UTC().Format(time.RFC3339Nano) + `"}`)
	}
	rcpts := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		return out
	}
	return []poisonKind{
		{"not JSON, NUL in a header key", "malformed_json", func(int) *kgo.Record {
			return &kgo.Record{Value: []byte("not json"), Headers: []kgo.RecordHeader{{Key: "trace\x00id", Value: []byte{0}}, {Key: "\xff\xfe", Value: nil}}}
		}},
		{"2,000 recipients × 300 KiB of data", "too_large", func(i int) *kgo.Record {
			return &kgo.Record{Value: msg(rcpts(fmt.Sprintf("px%d-", i), 2000), strings.Repeat("x", 300<<10))}
		}},
		{"2,000 recipients × 40 KiB of data (80 MB of rows)", "too_large", func(i int) *kgo.Record {
			return &kgo.Record{Value: msg(rcpts(fmt.Sprintf("pw%d-", i), 2000), strings.Repeat("w", 40<<10))}
		}},
		{"10,001 recipients", "too_many_recipients", func(i int) *kgo.Record {
			return &kgo.Record{Value: msg(rcpts(fmt.Sprintf("pt%d-", i), 10001), "t")}
		}},
		{"stamped −1 (a v0/v1 record)", "timestamp_out_of_range", func(i int) *kgo.Record {
			return &kgo.Record{Value: msg([]string{fmt.Sprintf("pz%d", i)}, "z"), Timestamp: time.UnixMilli(-1)}
		}},
		{"stamped 30 days ahead", "timestamp_out_of_range", func(i int) *kgo.Record {
			return &kgo.Record{Value: msg([]string{fmt.Sprintf("pf%d", i)}, "f"), Timestamp: time.Now().Add(30 * 24 * time.Hour)}
		}},
		{"an empty value", "malformed_json", func(int) *kgo.Record { return &kgo.Record{Value: []byte{}} }},
	}
}

type poisonPhase struct {
	Name     string         `json:"name"`
	Hostile  bool           `json:"hostile"`
	Sent     int            `json:"sent"`
	Expected int            `json:"expected"`
	Received int            `json:"received"`
	Lat      report.Latency `json:"latencyMs"`
	PeakRSS  float64        `json:"peakRssKiB"`
	Poison   int            `json:"poisonSent"`
	Samples  []float64      `json:"-"`
}

type poisonResult struct {
	Rate       float64        `json:"rate"`
	Recipients int            `json:"recipients"`
	Phases     []poisonPhase  `json:"phases"`
	Without    report.Latency `json:"withoutMs"` // the phases without hostile records, pooled
	With       report.Latency `json:"withMs"`
	Ratio      float64        `json:"p99Ratio"`
	PeakRSSKiB float64        `json:"peakRssKiB"` // while hostile records arrived
	BaseRSSKiB float64        `json:"baseRssKiB"` // the peak without them
	// Sent and Dead count hostile records by expected reason, and the dead
	// letters stored by reason; Rows are the rows made of hostile records.
	Sent  map[string]int `json:"sentByReason"`
	Dead  map[string]int `json:"deadByReason"`
	Rows  int            `json:"hostileRows"`
	Kinds []string       `json:"kinds"`
}

// runPoison alternates phases without and with hostile records (-poison-rounds
// pairs), each -warmup + -duration at poisonRate, on one server.
func runPoison(ctx context.Context, e *env, rounds, n int) (*poisonResult, error) {
	broker, err := startBroker(e, topic)
	if err != nil {
		return nil, err
	}
	dbURL, err := e.database(ctx, "bench_poison")
	if err != nil {
		return nil, err
	}
	s, err := e.serve(ctx, serveOpts{name: "poison", dbURL: dbURL, broker: broker, extra: []string{"APP_ENV_KAFKA_GROUP_ID=bench-poison"}})
	if err != nil {
		return nil, err
	}
	defer s.stop()
	p, st, err := startPool(ctx, e, poolOpts{name: "poison", url: s.wsURL(), n: n, perProc: 5000, minProcs: 2, prefix: "r"})
	if err != nil {
		return nil, err
	}
	defer p.close()
	if st.Fail > 0 {
		return nil, fmt.Errorf("poison: %d clients failed to connect: %s", st.Fail, st.Err)
	}
	prod, err := newPacedProducer(broker)
	if err != nil {
		return nil, err
	}
	defer prod.close()
	// No kgo.RecordDeliveryTimeout: franz-go counts it from the record's
	// timestamp, so a record stamped −1 would time out at once.
	hostile, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(2<<20))
	if err != nil {
		return nil, err
	}
	defer hostile.Close()

	kinds := poisonKinds()
	res := &poisonResult{Rate: poisonRate, Recipients: n, Sent: map[string]int{}}
	for _, k := range kinds {
		res.Kinds = append(res.Kinds, k.name+" → "+k.reason)
	}
	var without, with []float64
	sentPoison := 0
	for round := 0; round < rounds; round++ {
		for _, withPoison := range []bool{false, true} {
			ph := poisonPhase{Name: fmt.Sprintf("round %d, without", round+1), Hostile: withPoison}
			if withPoison {
				ph.Name = fmt.Sprintf("round %d, one hostile record per %s", round+1, report.Thousands(poisonEvery))
			}
			sampler := newPeakSampler(s)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var produceErr error
			if withPoison {
				wg.Add(1)
				go func() { // poisonRate/poisonEvery hostile records a second, the kinds in turn
					defer wg.Done()
					every := time.Duration(float64(time.Second) * poisonEvery / poisonRate)
					t := time.NewTicker(every)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
						}
						k := kinds[sentPoison%len(kinds)]
						r := k.record(sentPoison)
						r.Key = []byte(organizer(sentPoison))
						if err := hostile.ProduceSync(ctx, r).FirstErr(); err != nil {
							produceErr = err
							return
						}
						res.Sent[k.reason]++
						ph.Poison++
						sentPoison++
					}
				}()
			}
			runs, err := measureRate(ctx, e, prod, poisonRate, recipientsOf("r", n), p)
			close(stop)
			wg.Wait()
			ph.PeakRSS, _ = sampler.stop()
			if err != nil {
				return res, err
			}
			if produceErr != nil {
				return res, fmt.Errorf("produce a hostile record: %w", produceErr)
			}
			run := runs[0]
			ph.Sent, ph.Expected, ph.Received, ph.Lat, ph.Samples = run.Sent, run.Expected, run.Received, run.Lat, run.Samples
			logf("poison %s: %d hostile records, p99 %.2f ms, peak RSS %.0f MiB", ph.Name, ph.Poison, ph.Lat.P99, ph.PeakRSS/1024)
			res.Phases = append(res.Phases, ph)
			if withPoison {
				with = append(with, run.Samples...)
				res.PeakRSSKiB = max(res.PeakRSSKiB, ph.PeakRSS)
			} else {
				without = append(without, run.Samples...)
				res.BaseRSSKiB = max(res.BaseRSSKiB, ph.PeakRSS)
			}
			_ = sleepCtx(ctx, 2*time.Second)
		}
	}
	res.Without, res.With = report.Summarize(without), report.Summarize(with)
	res.Ratio = report.Ratio(res.With.P99, res.Without.P99)

	// Every hostile record a dead letter with its reason, none a row.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(context.Background())
	res.Dead = map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := conn.Query(ctx, `SELECT reason, count(*) FROM dead_letters GROUP BY reason`)
		if err != nil {
			return res, err
		}
		got := map[string]int{}
		for rows.Next() {
			var reason string
			var c int
			if err := rows.Scan(&reason, &c); err != nil {
				return res, err
			}
			got[reason] = c
		}
		rows.Close()
		res.Dead = got
		if fmt.Sprint(got) == fmt.Sprint(res.Sent) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE recipient_id LIKE 'p%'`).Scan(&res.Rows); err != nil {
		return res, err
	}
	return res, nil
}

// poisonSection is the scenario's part of the report.
func poisonSection(rp *reporter, r *poisonResult, rounds int) report.Section {
	reasons := make([]string, 0, len(r.Sent))
	for k := range r.Sent {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	var sent, dead []string
	allDead := r.Rows == 0
	for _, k := range reasons {
		sent = append(sent, fmt.Sprintf("%s %d", k, r.Sent[k]))
		dead = append(dead, fmt.Sprintf("%s %d", k, r.Dead[k]))
		allDead = allDead && r.Dead[k] == r.Sent[k]
	}
	for k := range r.Dead {
		if _, ok := r.Sent[k]; !ok {
			allDead = false
			dead = append(dead, fmt.Sprintf("%s %d (unexpected)", k, r.Dead[k]))
		}
	}
	s := report.Section{
		Title: "Poison records",
		Method: fmt.Sprintf(`%s recipients are connected (one client each, 2 client processes). A producer sends valid
messages (2 recipients each) at %s messages/s; in every other phase a second producer adds one hostile
record per %s valid ones (%s a second), each kind of issue 20 in turn: %s. Phases without and with
them alternate, %d pairs, each %s of warm-up and %s measured (the e2e scenario's measurement: receive −
send of the valid frames). The server's RSS is sampled every 100 ms. At the end the dead letters are
counted by reason against the hostile records sent.`,
			report.Thousands(int64(r.Recipients)), report.Thousands(int64(r.Rate)), report.Thousands(poisonEvery),
			strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.1f", r.Rate/poisonEvery), "0"), "."),
			strings.Join(r.Kinds, "; "), rounds, rp.cfg.warmup, rp.cfg.duration),
		Rows: []report.Row{
			{Figure: "valid records' p99 with hostile records", Value: r.With.P99, Unit: "ms", Reference: "without", RefValue: r.Without.P99,
				Target: fmt.Sprintf("≤ %.1f×", targetPoisonP99), Met: report.AtMost(r.Ratio, targetPoisonP99)},
			{Figure: "valid records' p50 with hostile records", Value: r.With.P50, Unit: "ms", Reference: "without", RefValue: r.Without.P50},
			{Figure: "server RSS, peak with hostile records", Value: r.PeakRSSKiB / 1024, Unit: "MiB", Reference: "peak without", RefValue: r.BaseRSSKiB / 1024,
				Target: fmt.Sprintf("≤ %d MiB", targetPoisonRSSMiB), Met: report.AtMost(r.PeakRSSKiB/1024, targetPoisonRSSMiB)},
		},
		Notes: []string{
			"Hostile records sent by expected reason: " + strings.Join(sent, ", ") + "; dead letters stored: " + strings.Join(dead, ", ") +
				fmt.Sprintf("; rows made of hostile records: %d.", r.Rows),
		},
	}
	for _, ph := range r.Phases {
		s.Notes = append(s.Notes, fmt.Sprintf("%s: %s of %s frames, p50 %.2f ms, p99 %.2f ms, max %.1f ms, peak RSS %.0f MiB.",
			ph.Name, report.Thousands(int64(ph.Received)), report.Thousands(int64(ph.Expected)), ph.Lat.P50, ph.Lat.P99, ph.Lat.Max, ph.PeakRSS/1024))
	}
	var withS, withoutS []float64
	for _, ph := range r.Phases {
		if ph.Hostile {
			withS = append(withS, ph.Samples...)
		} else {
			withoutS = append(withoutS, ph.Samples...)
		}
	}
	rp.chart(&s, "poison-latency", func(p string) error {
		return report.CDFChart(p, "Valid records, produce → WebSocket receive", []report.Series{
			{Name: "without hostile records", MS: withoutS}, {Name: "one hostile record per 1,000", MS: withS}})
	})
	rp.rep.Targets = append(rp.rep.Targets,
		report.Target{Goal: fmt.Sprintf("poison: valid records' p99 within %.1f × the same run without hostile records (%s msg/s, one per %s)", targetPoisonP99, report.Thousands(poisonRate), report.Thousands(poisonEvery)),
			Measured: fmt.Sprintf("%s → %s: %s", report.FormatValue(r.Without.P99, "ms"), report.FormatValue(r.With.P99, "ms"), report.FormatRatio(r.Ratio)),
			Met:      report.AtMost(r.Ratio, targetPoisonP99)},
		report.Target{Goal: fmt.Sprintf("poison: server RSS within the documented bound (%d MiB)", targetPoisonRSSMiB),
			Measured: report.FormatValue(r.PeakRSSKiB/1024, "MiB"), Met: report.AtMost(r.PeakRSSKiB/1024, targetPoisonRSSMiB)},
		report.Target{Goal: "poison: every hostile record a dead letter with its reason",
			Measured: strings.Join(dead, ", "), Met: report.Bool(allDead)})
	return s
}
