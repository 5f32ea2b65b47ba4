package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/bench/report"
	"github.com/signal-notify/signal/internal/launch"
	"github.com/signal-notify/signal/internal/store"
)

func init() {
	register(&scenario{name: "inbox", order: 100,
		summary: "a 10 M-row inbox: migration, pages and counts, mark-all-read, retention while ingesting",
		setup: func(fs *flag.FlagSet) run {
			x := &inboxRun{}
			fs.IntVar(&x.rows, "inbox-rows", 10_000_000, "inbox: notifications in the table")
			fs.IntVar(&x.days, "inbox-days", 90, "inbox: days the notifications span (one partition each)")
			fs.IntVar(&x.requests, "inbox-requests", 1000, "inbox: measured requests per kind of query")
			fs.IntVar(&x.backlog, "inbox-backlog", 300000, "inbox: messages drained while a day is removed")
			fs.BoolVar(&x.skipMigration, "inbox-skip-migration", false, "inbox: skip the migration part (a second load of the rows)")
			return x
		}})
}

// Targets of the issue, on this 2-core machine.
const (
	targetInboxP99    = 5.0
	targetRemovalRate = 0.9
)

type inboxRun struct {
	rows, days, requests, backlog int
	skipMigration                 bool
	res                           *inboxResult
}

func (x *inboxRun) check() error {
	if x.rows < 10000 || x.days < 3 || x.requests < 10 || x.backlog < 100 {
		return errors.New("-inbox-rows at least 10,000, -inbox-days at least 3, -inbox-requests at least 10, -inbox-backlog at least 100")
	}
	return nil
}

func (x *inboxRun) measure(ctx context.Context, e *env) (err error) {
	x.res, err = x.run(ctx, e)
	return err
}

func (x *inboxRun) results() map[string]any { return map[string]any{"inbox": x.res} }

// The inbox scenario: a table of -inbox-rows notifications over -inbox-days
// days, skewed (10 recipients with 1 % of the rows each, 5 with 10,000,
// the rest ~60 each), loaded with COPY.
//
//  1. Migration: the rows in the table of the version before issue 13 (a
//     plain table); `signalctl migrate up` timed while a writer inserts a
//     row at a time (its longest wait is how long the migration blocked
//     writes); then retention by batched DELETEs of the oldest day of that
//     table (the legacy partition) while serve drains a backlog; then
//     `migrate down`, timed.
//  2. Steady state: the same rows in day partitions. Inbox pages and counts
//     through the REST API, mark-all-read of 10,000 rows against the
//     UPDATE of the version before, the first count after the counts
//     cache was invalidated, and retention by dropping the oldest day's
//     partition while serve drains a backlog.

type inboxResult struct {
	Rows           int     `json:"rows"`
	Days           int     `json:"days"`
	Partitions     int     `json:"partitions"`
	HotRecipients  int     `json:"hotRecipients"`
	HotRows        int     `json:"hotRows"`
	WarmRecipients int     `json:"warmRecipients"`
	WarmRows       int     `json:"warmRows"`
	ColdRecipients int     `json:"coldRecipients"`
	LoadSeconds    float64 `json:"loadSeconds"` // steady state: COPY, indexes, VACUUM ANALYZE
	TableBytes     int64   `json:"tableBytes"`

	Migration *migrationResult `json:"migration,omitempty"`

	Queries []inboxQuery `json:"queries"`
	// Mark-all-read of WarmRows rows, through the REST API.
	ReadAllMs  report.Latency `json:"readAllMs"`
	ReadAllWAL int64          `json:"readAllWalBytes"`
	// The same with the statement of the version before (UPDATE of the wide rows).
	UpdateMs  float64 `json:"updateMs"`
	UpdateWAL int64   `json:"updateWalBytes"`
	// The first count of a hot recipient after the cache was invalidated.
	RecountMs report.Latency `json:"recountMs"`

	Drop   *removalRun `json:"drop,omitempty"`
	Delete *removalRun `json:"delete,omitempty"`
}

type migrationResult struct {
	LoadSeconds float64 `json:"loadSeconds"`
	UpSeconds   float64 `json:"upSeconds"`
	// Each migration's time, 0006 and 0007.
	StepSeconds []float64 `json:"stepSeconds"`
	// The single-row writer during migrate up: its longest insert, and how
	// many took over 100 ms.
	WriterMaxMs   float64 `json:"writerMaxMs"`
	WriterSlow    int     `json:"writerSlow"`
	WriterInserts int     `json:"writerInserts"`
	DownSeconds   float64 `json:"downSeconds"`
}

type inboxQuery struct {
	Name string         `json:"name"`
	Lat  report.Latency `json:"lat"`
}

// removalRun is one day removed while serve drained a backlog.
type removalRun struct {
	How            string  `json:"how"`
	DayRows        int64   `json:"dayRows"`
	RemovalSeconds float64 `json:"removalSeconds"`
	// Ingest rates (messages/s) of the same drain: in the 2 s before the
	// removal started, and from its start to 1 s after its end.
	BeforeRate float64 `json:"beforeRate"`
	DuringRate float64 `json:"duringRate"`
	DrainRate  float64 `json:"drainRate"` // the whole drain
	// Outlasted: the drain went on after that window (else the rates are
	// not comparable: the backlog ran out).
	Outlasted bool `json:"drainOutlastedRemoval"`
	Messages  int  `json:"messages"`
}

type inboxShape struct {
	rows, days          int
	hot, hotRows        int
	warm, warmRows      int
	cold                int
	recipient           []int32 // of each row, in time order
	start               time.Time
	names               func(int32) string
	dayStart, dayCount  []int // rows of each day
	refundEvery, orgMod int
}

func newInboxShape(rows, days int) *inboxShape {
	s := &inboxShape{rows: rows, days: days, hot: 10, hotRows: rows / 100, warm: 5, warmRows: min(10000, rows/100),
		refundEvery: 10, orgMod: 100}
	rest := rows - s.hot*s.hotRows - s.warm*s.warmRows
	s.cold = max(1, rest/60)
	s.recipient = make([]int32, 0, rows)
	for h := 0; h < s.hot; h++ {
		for range s.hotRows {
			s.recipient = append(s.recipient, int32(h))
		}
	}
	for w := 0; w < s.warm; w++ {
		for range s.warmRows {
			s.recipient = append(s.recipient, int32(s.hot+w))
		}
	}
	for i := 0; len(s.recipient) < rows; i++ {
		s.recipient = append(s.recipient, int32(s.hot+s.warm+i%s.cold))
	}
	rng := mrand.New(mrand.NewPCG(13, 13))
	rng.Shuffle(len(s.recipient), func(i, j int) { s.recipient[i], s.recipient[j] = s.recipient[j], s.recipient[i] })
	s.names = func(r int32) string {
		switch {
		case int(r) < s.hot:
			return "hot-" + strconv.Itoa(int(r))
		case int(r) < s.hot+s.warm:
			return "warm-" + strconv.Itoa(int(r)-s.hot)
		}
		return "u-" + strconv.Itoa(int(r)-s.hot-s.warm)
	}
	// Days end today: the oldest is days-1 days ago.
	s.start = time.Now().UTC().Truncate(store.Day).Add(-time.Duration(days-1) * store.Day)
	for d := 0; d < days; d++ {
		s.dayStart = append(s.dayStart, d*rows/days)
		s.dayCount = append(s.dayCount, (d+1)*rows/days-d*rows/days)
	}
	return s
}

// row returns the column values of row i (of day d), in copyCols order.
var copyCols = []string{"id", "seq", "recipient_id", "type", "organizer_id", "actor_id", "actor", "content", "action_url",
	"data", "occurred_at", "created_at", "event_key", "source_topic", "source_partition", "source_offset"}

func (s *inboxShape) row(d, i int, today time.Time) []any {
	k := i - s.dayStart[d]
	at := s.start.Add(time.Duration(d) * store.Day).Add(time.Duration(float64(k) / float64(s.dayCount[d]) * float64(store.Day)))
	if at.After(today) {
		at = today
	}
	var id [16]byte
	ms := uint64(at.UnixMilli())
	for j := 0; j < 6; j++ {
		id[j] = byte(ms >> (40 - 8*j))
	}
	_, _ = rand.Read(id[6:])
	id[6] = 0x80 | id[6]&0x0f
	id[8] = 0x80 | id[8]&0x3f
	typ := "PAYMENT_SUCCESS"
	if i%s.refundEvery == 0 {
		typ = "REFUND_ISSUED"
	}
	n := strconv.Itoa(i)
	var key [16]byte
	_, _ = rand.Read(key[:])
	return []any{id, int64(i + 1), s.names(s.recipient[i]), typ, "org-" + strconv.Itoa(i%s.orgMod), "a" + strconv.Itoa(i%500),
		json.RawMessage(`{"id":"a` + strconv.Itoa(i%500) + `","name":"Alice Martin","type":"user"}`),
		"Alice Martin completed a payment for Gold ticket " + n, "/payments/p-" + n,
		json.RawMessage(`{"payment":{"id":"p-` + n + `","subject":"Gold ticket ` + n + `","amount":"125.00","currency":"EUR"}}`),
		at, at, key[:], topic, int32(i % 4), int64(i)}
}

// copyDays copies the rows of days into table(d) with two connections.
func (s *inboxShape) copyDays(ctx context.Context, dbURL string, table func(d int) string) error {
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	today := time.Now().UTC()
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(context.Background())
			for d := w; d < s.days; d += 2 {
				i := s.dayStart[d]
				end := i + s.dayCount[d]
				_, err := conn.CopyFrom(ctx, pgx.Identifier{table(d)}, copyCols, pgx.CopyFromFunc(func() ([]any, error) {
					if i >= end {
						return nil, nil
					}
					r := s.row(d, i, today)
					i++
					return r, nil
				}))
				if err != nil {
					errs <- fmt.Errorf("copy day %d into %s: %w", d, table(d), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func exec1(ctx context.Context, dbURL string, sqls ...string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, q := range sqls {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func (e *env) signalctl(ctx context.Context, args ...string) (time.Duration, error) {
	cmd := launch.CommandContext(ctx, e.bin, args...)
	cmd.Env = append(os.Environ(), "SIGNAL_CONFIG=", "NO_COLOR=1")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("signalctl %v: %w\n%.2000s", args, err, out)
	}
	return time.Since(start), nil
}

func (x *inboxRun) run(ctx context.Context, e *env) (*inboxResult, error) {
	shape := newInboxShape(x.rows, x.days)
	res := &inboxResult{Rows: shape.rows, Days: shape.days, HotRecipients: shape.hot, HotRows: shape.hotRows,
		WarmRecipients: shape.warm, WarmRows: shape.warmRows, ColdRecipients: shape.cold}
	broker, err := startBroker(e, "inbox-removal-1", "inbox-removal-2", "inbox-unused")
	if err != nil {
		return nil, err
	}
	if !x.skipMigration {
		if res.Migration, res.Delete, err = x.migration(ctx, e, shape, broker); err != nil {
			return res, err
		}
	}
	return res, x.steadyState(ctx, e, shape, broker, res)
}

// migration loads the rows into the plain table of the version before
// issue 13 and migrates it, then measures batched DELETEs of its oldest day
// (the legacy partition) while ingest runs, then migrates down.
func (x *inboxRun) migration(ctx context.Context, e *env, s *inboxShape, broker string) (*migrationResult, *removalRun, error) {
	const name = "bench_inbox_migrate"
	dbURL, err := e.database(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	defer e.dropDatabase(name)
	m := &migrationResult{}
	// Version 5: before the inbox's 0006 and 0007 (and 0008, which follows them).
	if _, err := e.signalctl(ctx, "migrate", "down", "3", "--yes", "--database-url", dbURL); err != nil {
		return nil, nil, err
	}
	start := time.Now()
	if err := exec1(ctx, dbURL, `ALTER TABLE notifications DROP CONSTRAINT notifications_pkey`,
		`DROP INDEX notifications_recipient_seq, notifications_recipient_event`); err != nil {
		return nil, nil, err
	}
	if err := s.copyDays(ctx, dbURL, func(int) string { return "notifications" }); err != nil {
		return nil, nil, err
	}
	if err := exec1(ctx, dbURL, `SET maintenance_work_mem = '1GB'`,
		`ALTER TABLE notifications ADD CONSTRAINT notifications_pkey PRIMARY KEY (id)`,
		`CREATE UNIQUE INDEX notifications_recipient_seq ON notifications (recipient_id, seq)`,
		`CREATE INDEX notifications_recipient_event ON notifications (recipient_id, event_key)`,
		`SELECT setval(pg_get_serial_sequence('notifications', 'seq'), (SELECT max(seq) FROM notifications))`,
		`VACUUM ANALYZE notifications`); err != nil {
		return nil, nil, err
	}
	m.LoadSeconds = time.Since(start).Seconds()
	logf("inbox: %s rows in the table of the version before, in %.0fs", report.Thousands(int64(s.rows)), m.LoadSeconds)

	// migrate up, with a writer inserting one row at a time meanwhile.
	e.checkpoint(ctx)
	wctx, stopWriter := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var maxMs atomic.Int64
	var slow, inserts atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			logf("inbox: writer: %v", err)
			return
		}
		defer conn.Close(context.Background())
		for i := 0; wctx.Err() == nil; i++ {
			r := s.row(s.days-1, s.dayStart[s.days-1], time.Now().UTC())
			r[0], r[1], r[2] = newTimeID(time.Now()), int64(s.rows+1_000_000+i), "writer"
			t0 := time.Now()
			_, err := conn.Exec(wctx, `INSERT INTO notifications (`+strings.Join(copyCols, ", ")+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)`, r...)
			if err != nil {
				if wctx.Err() == nil {
					logf("inbox: writer: %v", err)
				}
				return
			}
			ms := time.Since(t0).Milliseconds()
			inserts.Add(1)
			if ms > 100 {
				slow.Add(1)
			}
			for old := maxMs.Load(); ms > old && !maxMs.CompareAndSwap(old, ms); old = maxMs.Load() {
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	// One migration at a time, with the code of signalctl migrate up.
	mig, err := store.NewMigrator(dbURL)
	if err != nil {
		stopWriter()
		return nil, nil, err
	}
	start = time.Now()
	for _, v := range []uint{6, 7, 8} { // 8 (preferences: a new table) so that serve runs on it

		t0 := time.Now()
		if err = mig.UpTo(v); err != nil {
			err = fmt.Errorf("migrate up to %d: %w", v, err)
			break
		}
		m.StepSeconds = append(m.StepSeconds, time.Since(t0).Seconds())
	}
	took := time.Since(start)
	mig.Close()
	time.Sleep(200 * time.Millisecond)
	stopWriter()
	wg.Wait()
	if err != nil {
		return nil, nil, err
	}
	m.UpSeconds, m.WriterMaxMs, m.WriterSlow, m.WriterInserts = took.Seconds(), float64(maxMs.Load()), int(slow.Load()), int(inserts.Load())
	logf("inbox: migrate up of %s rows in %.1fs (0006 %.1fs, 0007 %.1fs); a writer meanwhile: %d inserts, longest %d ms, %d over 100 ms",
		report.Thousands(int64(s.rows)), m.UpSeconds, m.StepSeconds[0], m.StepSeconds[1], m.WriterInserts, maxMs.Load(), m.WriterSlow)

	del, err := x.removalWhileIngesting(ctx, e, s, broker, dbURL, "batched DELETEs of the oldest day from the legacy partition (a plain table), then its VACUUM", "1", true)
	if err != nil {
		return nil, nil, err
	}

	e.checkpoint(ctx)
	took, err = e.signalctl(ctx, "migrate", "down", "3", "--yes", "--database-url", dbURL)
	if err != nil {
		return nil, nil, err
	}
	m.DownSeconds = took.Seconds()
	logf("inbox: migrate down 3 (to version 5) in %.1fs", m.DownSeconds)
	return m, del, nil
}

func newTimeID(t time.Time) [16]byte {
	var id [16]byte
	ms := uint64(t.UnixMilli())
	for j := 0; j < 6; j++ {
		id[j] = byte(ms >> (40 - 8*j))
	}
	_, _ = rand.Read(id[6:])
	id[6] = 0x80 | id[6]&0x0f
	id[8] = 0x80 | id[8]&0x3f
	return id
}

// steadyState loads the rows into day partitions and measures the
// inbox through the REST API, then a partition drop while ingest runs.
func (x *inboxRun) steadyState(ctx context.Context, e *env, s *inboxShape, broker string, res *inboxResult) error {
	const name = "bench_inbox"
	dbURL, err := e.database(ctx, name)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, dbURL, 4)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	var days []time.Time
	for d := 0; d < s.days; d++ {
		days = append(days, s.start.Add(time.Duration(d)*store.Day))
	}
	if err := st.EnsurePartitions(ctx, days); err != nil {
		return err
	}
	if err := exec1(ctx, dbURL, `ALTER TABLE notifications DROP CONSTRAINT notifications_pkey`,
		`DROP INDEX notifications_recipient_seq, notifications_recipient_event`); err != nil {
		return err
	}
	if err := s.copyDays(ctx, dbURL, func(d int) string { return store.DayPartition(days[d]) }); err != nil {
		return err
	}
	if err := exec1(ctx, dbURL, `SET maintenance_work_mem = '1GB'`,
		`ALTER TABLE notifications ADD CONSTRAINT notifications_pkey PRIMARY KEY (id)`,
		`CREATE INDEX notifications_recipient_seq ON notifications (recipient_id, seq) INCLUDE (is_read)`,
		`CREATE INDEX notifications_recipient_event ON notifications (recipient_id, event_key)`,
		`VACUUM ANALYZE`); err != nil {
		return err
	}
	res.LoadSeconds = time.Since(start).Seconds()
	parts, _ := st.Partitions(ctx)
	res.Partitions = len(parts)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_ = conn.QueryRow(ctx, `SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'notifications'::regclass`).Scan(&res.TableBytes)
	logf("inbox: %s rows in %d day partitions (%d partitions, %.1f GiB with indexes) in %.0fs", report.Thousands(int64(s.rows)), s.days,
		res.Partitions, float64(res.TableBytes)/(1<<30), res.LoadSeconds)

	// A serve that consumes nothing: the REST API only.
	e.checkpoint(ctx)
	srv, err := e.serve(ctx, serveOpts{name: "inbox-api", dbURL: dbURL, broker: broker,
		extra: []string{"SIGNAL_KAFKA_TOPIC=inbox-unused", "APP_ENV_KAFKA_GROUP_ID=inbox-api", "SIGNAL_NOTIFICATIONS_RETENTION=0"}})
	if err != nil {
		return err
	}
	defer srv.stop()
	api := &inboxAPI{ctx: ctx, base: srv.url() + "/notifications", cl: &http.Client{Timeout: 30 * time.Second}}
	n := x.requests
	hot := func(i int) string { return "hot-" + strconv.Itoa(i%s.hot) }
	cold := func(i int) string { return "u-" + strconv.Itoa((i*7919)%s.cold) }
	// A cursor 50 % deep into a hot recipient's rows.
	var deepSeq int64
	_ = conn.QueryRow(ctx, `SELECT seq FROM notifications WHERE recipient_id = 'hot-0' ORDER BY seq DESC OFFSET $1 LIMIT 1`, s.hotRows/2).Scan(&deepSeq)
	deep := base64.RawURLEncoding.EncodeToString([]byte("s" + strconv.FormatInt(deepSeq, 10)))
	// The first count of each hot recipient makes its cache: measured
	// below (after an epoch), not here.
	for i := 0; i < s.hot; i++ {
		if _, err := api.get("/counts", hot(i)); err != nil {
			return err
		}
	}
	cases := []struct {
		name  string
		path  func(i int) (string, string)
		count int
	}{
		{"page, hot recipient (newest 20)", func(i int) (string, string) { return "?limit=20", hot(i) }, n},
		{"page, cold recipient", func(i int) (string, string) { return "?limit=20", cold(i) }, n},
		{"page, hot recipient, 50 % deep (cursor)", func(i int) (string, string) { return "?limit=20&cursor=" + deep, "hot-0" }, n},
		{"page, hot recipient, unread", func(i int) (string, string) { return "?limit=20&unread=true", hot(i) }, n},
		{"page, hot recipient, unseen", func(i int) (string, string) { return "?limit=20&unseen=true", hot(i) }, n},
		{"page, hot recipient, type (10 % of rows)", func(i int) (string, string) { return "?limit=20&type=REFUND_ISSUED", hot(i) }, n},
		{"page, hot recipient, archived (none)", func(i int) (string, string) { return "?limit=20&archived=true", hot(i) }, n},
		{"counts, hot recipient", func(i int) (string, string) { return "/counts", hot(i) }, n},
		{"counts, cold recipient", func(i int) (string, string) { return "/counts", cold(i) }, n},
	}
	for _, c := range cases {
		lat, err := api.measure(c.count, c.path)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		res.Queries = append(res.Queries, inboxQuery{Name: c.name, Lat: lat})
		logf("inbox: %s: p50 %.2f ms, p99 %.2f ms", c.name, lat.P50, lat.P99)
	}

	// Mark-all-read of the warm recipients' 10,000 rows, then the same with
	// the version before's UPDATE of the wide rows.
	var readAll []float64
	var wal0, wal1 string
	for w := 0; w < s.warm-1; w++ {
		e.checkpoint(ctx)
		_ = conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&wal0)
		t0 := time.Now()
		body, err := api.post("/read-all", "warm-"+strconv.Itoa(w))
		if err != nil {
			return err
		}
		readAll = append(readAll, float64(time.Since(t0).Microseconds())/1000)
		_ = conn.QueryRow(ctx, `SELECT pg_current_wal_lsn() - $1::pg_lsn`, wal0).Scan(&res.ReadAllWAL)
		if w == 0 {
			logf("inbox: read-all of warm-0: %s", body)
		}
	}
	res.ReadAllMs = report.Summarize(readAll)
	lat, err := api.measure(n, func(i int) (string, string) { return "?limit=20&unread=true", "warm-" + strconv.Itoa(i%(s.warm-1)) })
	if err != nil {
		return err
	}
	res.Queries = append(res.Queries, inboxQuery{Name: "page, unread, after read-all of 10,000", Lat: lat})
	lat, err = api.measure(n, func(i int) (string, string) { return "/counts", "warm-" + strconv.Itoa(i%(s.warm-1)) })
	if err != nil {
		return err
	}
	res.Queries = append(res.Queries, inboxQuery{Name: "counts, after read-all of 10,000", Lat: lat})
	e.checkpoint(ctx)
	_ = conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&wal1)
	t0 := time.Now()
	if _, err := conn.Exec(ctx, `UPDATE notifications SET is_read = true, read_at = now() WHERE recipient_id = $1 AND NOT is_read`,
		"warm-"+strconv.Itoa(s.warm-1)); err != nil {
		return err
	}
	res.UpdateMs = float64(time.Since(t0).Microseconds()) / 1000
	_ = conn.QueryRow(ctx, `SELECT pg_current_wal_lsn() - $1::pg_lsn`, wal1).Scan(&res.UpdateWAL)
	logf("inbox: read-all of %s rows: p50 %.1f ms, %s of WAL; the UPDATE of before: %.1f ms, %s of WAL",
		report.Thousands(int64(s.warmRows)), res.ReadAllMs.P50, bytesText(res.ReadAllWAL), res.UpdateMs, bytesText(res.UpdateWAL))

	// The first count after the caches were invalidated (a retention
	// removal does that): a recount of each hot recipient.
	if _, err := conn.Exec(ctx, `UPDATE inbox_epoch SET epoch = epoch + 1`); err != nil {
		return err
	}
	var recount []float64
	for i := 0; i < s.hot; i++ {
		t0 := time.Now()
		if _, err := api.get("/counts", hot(i)); err != nil {
			return err
		}
		recount = append(recount, float64(time.Since(t0).Microseconds())/1000)
	}
	res.RecountMs = report.Summarize(recount)
	logf("inbox: first count of a hot recipient after an epoch: p50 %.1f ms, max %.1f ms", res.RecountMs.P50, res.RecountMs.Max)
	srv.stop()

	res.Drop, err = x.removalWhileIngesting(ctx, e, s, broker, dbURL, "DETACH CONCURRENTLY and DROP of the oldest day's partition", "2", false)
	return err
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
}

// inboxAPI calls the inbox routes with the API key.
type inboxAPI struct {
	ctx  context.Context
	base string
	cl   *http.Client
}

func (a *inboxAPI) do(method, path, recipient string) ([]byte, error) {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	req, _ := http.NewRequestWithContext(a.ctx, method, a.base+path+sep+"recipientId="+url.QueryEscape(recipient), nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := a.cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s %s: %d %s", method, req.URL, resp.StatusCode, b)
	}
	return b, nil
}

func (a *inboxAPI) get(path, recipient string) ([]byte, error)  { return a.do("GET", path, recipient) }
func (a *inboxAPI) post(path, recipient string) ([]byte, error) { return a.do("POST", path, recipient) }

// measure runs n requests after n/10 of warm-up, one at a time.
func (a *inboxAPI) measure(n int, path func(i int) (string, string)) (report.Latency, error) {
	var ms []float64
	for i := -n / 10; i < n; i++ {
		p, r := path(i + n)
		t0 := time.Now()
		b, err := a.get(p, r)
		if err != nil {
			return report.Latency{}, err
		}
		if i >= 0 {
			ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
		}
		if i == 0 && p == "?limit=20" {
			var page struct{ Items []json.RawMessage }
			if json.Unmarshal(b, &page) != nil || len(page.Items) == 0 {
				return report.Latency{}, fmt.Errorf("empty page for %s: %s", r, b)
			}
		}
	}
	return report.Summarize(ms), nil
}

// removalWhileIngesting drains a backlog with serve and, once ingest is
// under way, removes the oldest day with store.Maintain (a partition drop,
// or batched DELETEs from the legacy partition followed by the VACUUM that
// must then reclaim them — what autovacuum would do). It compares the
// ingest rate while the removal runs with the rate just before.
func (x *inboxRun) removalWhileIngesting(ctx context.Context, e *env, s *inboxShape, broker, dbURL, how, tag string, vacuum bool) (*removalRun, error) {
	run := &removalRun{How: how, Messages: x.backlog}
	st, err := store.Open(ctx, dbURL, 2)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	oldest := s.start
	_ = st.Pool.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE id >= $1 AND id < $2`,
		store.DayBound(oldest), store.DayBound(oldest.Add(store.Day))).Scan(&run.DayRows)
	topic := "inbox-removal-" + tag
	if _, err := preProduceTopic(ctx, broker, topic, run.Messages, 20000); err != nil {
		return nil, err
	}
	// The retention that makes exactly the oldest day due.
	retention := time.Since(oldest.Add(store.Day)) - store.RetentionMargin - time.Hour
	var d drained
	run.DrainRate, d, err = drain(ctx, e, broker, dbURL, topic, run.Messages, func(ctx context.Context) error {
		// serve maintains partitions at start too: wait for its turn.
		res, err := st.Maintain(ctx, time.Now(), retention)
		for i := 0; err == nil && res.Skipped && i < 100; i++ {
			time.Sleep(20 * time.Millisecond)
			res, err = st.Maintain(ctx, time.Now(), retention)
		}
		if err == nil && len(res.Dropped) == 0 && res.Deleted == 0 {
			err = fmt.Errorf("nothing removed: %+v", res)
		}
		logf("inbox: removal %+v", res)
		if err == nil && vacuum {
			_, err = st.Pool.Exec(ctx, `VACUUM notifications_legacy`)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	run.RemovalSeconds, run.BeforeRate, run.DuringRate, run.Outlasted = d.seconds, d.before, d.during, d.outlasted
	logf("inbox: %s (%s rows) took %.2fs; ingest %.0f msg/s while it ran, %.0f msg/s just before (%.2f×; the drain outlasted it: %v); %.0f msg/s over the drain",
		how, report.Thousands(run.DayRows), run.RemovalSeconds, run.DuringRate, run.BeforeRate, run.DuringRate/run.BeforeRate, run.Outlasted, run.DrainRate)
	return run, nil
}

// drained describes what ran during a drain.
type drained struct {
	seconds   float64 // how long it took
	before    float64 // messages/s stored in the 2 s before it
	during    float64 // messages/s stored from its start to 1 s after its end
	outlasted bool    // the drain went on after that
}

// drain starts serve on topic and waits until it committed every offset;
// during, when set, runs once ingest has been under way for 2 s. It returns
// the ingest rate (from the first row's transaction to the last commit)
// and the rates around during.
func drain(ctx context.Context, e *env, broker, dbURL, topic string, n int, during func(context.Context) error) (rate float64, w drained, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return 0, w, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, w, err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, w, err
	}
	defer conn.Close(context.Background())
	e.checkpoint(ctx)
	group := "drain-" + topic
	srv, err := e.serve(ctx, serveOpts{name: group, dbURL: dbURL, broker: broker,
		extra: []string{"SIGNAL_KAFKA_TOPIC=" + topic, "APP_ENV_KAFKA_GROUP_ID=" + group, "SIGNAL_NOTIFICATIONS_RETENTION=0"}})
	if err != nil {
		return 0, w, err
	}
	defer srv.stop()
	duringDone := make(chan error, 1)
	var t0, t1 time.Time
	if during != nil {
		go func() {
			// Ingest under way: rows of this drain exist, then 2 s more.
			for {
				var any bool
				_ = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM notifications WHERE source_topic = $1)`, topic).Scan(&any)
				if any || ctx.Err() != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			_ = sleepCtx(ctx, 2*time.Second)
			t0 = time.Now()
			err := during(ctx)
			t1 = time.Now()
			duringDone <- err
		}()
	} else {
		duringDone <- nil
	}
	deadline := time.Now().Add(time.Duration(max(120, n/200)) * time.Second)
	var done time.Time
	for {
		committed, err := adm.FetchOffsets(ctx, group)
		if err == nil && allCommitted(ends, committed) {
			done = time.Now()
			break
		}
		if time.Now().After(deadline) {
			return 0, w, fmt.Errorf("drain %s: not done in time\n%s", topic, srv.logTail(10))
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return 0, w, err
		}
	}
	if err := <-duringDone; err != nil {
		return 0, w, err
	}
	srv.stop()
	var first time.Time
	var rows, before, meanwhile int
	end := t1.Add(time.Second)
	if err := conn.QueryRow(ctx, `SELECT count(*), min(created_at),
		count(*) FILTER (WHERE created_at >= $2 AND created_at < $3), count(*) FILTER (WHERE created_at >= $3 AND created_at < $4)
		FROM notifications WHERE source_topic = $1`, topic, t0.Add(-2*time.Second), t0, end).Scan(&rows, &first, &before, &meanwhile); err != nil {
		return 0, w, err
	}
	if rows != 2*n {
		return 0, w, fmt.Errorf("drain %s: %d rows, want %d", topic, rows, 2*n)
	}
	if !t0.IsZero() {
		w = drained{seconds: t1.Sub(t0).Seconds(), before: float64(before) / 2 / 2,
			during: float64(meanwhile) / 2 / end.Sub(t0).Seconds(), outlasted: done.After(end)}
	}
	return float64(n) / done.Sub(first).Seconds(), w, nil
}

func (x *inboxRun) report(rp *reporter) {
	r := x.res
	if r == nil {
		return
	}
	s := report.Section{
		Title: "Inbox at " + report.Thousands(int64(r.Rows)) + " notifications",
		Method: fmt.Sprintf(`%s notifications over %d days (one partition a day, %d partitions in all), loaded with COPY
and indexed afterwards: %d recipients with %s each, %d with %s, the rest over %s recipients (~60 each). One
`+"`signalctl serve`"+` answers the REST API (API key, one request at a time, %d measured per kind after
%d of warm-up; latency as the harness sees it, HTTP included). Mark-all-read is POST /notifications/read-all
of a recipient with %s unread notifications; its reference is the statement of the version before
(UPDATE of the wide rows) on another such recipient, WAL measured with pg_current_wal_lsn. Retention: serve
drains a backlog of %s messages; 2 s after its first rows, store.Maintain removes the oldest day;
the ingest rate from the removal's start to 1 s after its end is compared with the 2 s before.`,
			report.Thousands(int64(r.Rows)), r.Days, r.Partitions, r.HotRecipients, report.Thousands(int64(r.HotRows)),
			r.WarmRecipients, report.Thousands(int64(r.WarmRows)), report.Thousands(int64(r.ColdRecipients)),
			x.requests, x.requests/10, report.Thousands(int64(r.WarmRows)), report.Thousands(int64(x.backlog))),
	}
	worst := 0.0
	for _, q := range r.Queries {
		row := report.Row{Figure: q.Name + ", p99", Value: q.Lat.P99, Unit: "ms",
			Target: fmt.Sprintf("≤ %.0f ms", targetInboxP99), Met: report.AtMost(q.Lat.P99, targetInboxP99)}
		worst = max(worst, q.Lat.P99)
		s.Rows = append(s.Rows, row, report.Row{Figure: q.Name + ", p50", Value: q.Lat.P50, Unit: "ms"})
	}
	if len(r.Queries) > 0 {
		rp.rep.Targets = append(rp.rep.Targets, report.Target{Goal: fmt.Sprintf("inbox page and counts p99 ≤ %.0f ms", targetInboxP99),
			Measured: "worst kind: " + report.FormatValue(worst, "ms"), Met: report.AtMost(worst, targetInboxP99)})
	}
	s.Rows = append(s.Rows,
		report.Row{Figure: "mark-all-read of " + report.Thousands(int64(r.WarmRows)) + ", p50", Value: r.ReadAllMs.P50, Unit: "ms",
			Reference: "UPDATE of the wide rows", RefValue: r.UpdateMs},
		report.Row{Figure: "mark-all-read WAL", Value: float64(r.ReadAllWAL) / 1024, Unit: "KiB",
			Reference: "UPDATE of the wide rows", RefValue: float64(r.UpdateWAL) / 1024},
		report.Row{Figure: "first count of a hot recipient after the cache was invalidated, p50", Value: r.RecountMs.P50, Unit: "ms"},
		report.Row{Figure: "first count of a hot recipient after the cache was invalidated, max", Value: r.RecountMs.Max, Unit: "ms"},
	)
	for _, rm := range []*removalRun{r.Drop, r.Delete} {
		if rm == nil {
			continue
		}
		ratio := report.Ratio(rm.DuringRate, rm.BeforeRate)
		row := report.Row{Figure: "ingest while removing a day: " + rm.How, Value: rm.DuringRate, Unit: "msg/s",
			Reference: "the 2 s before", RefValue: rm.BeforeRate}
		if !rm.Outlasted {
			row.Figure += " (the backlog ran out before the removal ended: not comparable)"
		}
		if rm == r.Drop {
			row.Target, row.Met = fmt.Sprintf("≥ %.1f× before", targetRemovalRate), report.AtLeast(ratio, targetRemovalRate)
			if !rm.Outlasted {
				row.Met = nil
			}
			rp.rep.Targets = append(rp.rep.Targets, report.Target{Goal: "retention removing one day slows ingest by less than 10 %",
				Measured: fmt.Sprintf("%s while removing vs %s before: %s", report.FormatValue(rm.DuringRate, "msg/s"), report.FormatValue(rm.BeforeRate, "msg/s"), report.FormatRatio(ratio)),
				Met:      row.Met})
		}
		s.Rows = append(s.Rows, row,
			report.Row{Figure: "time to remove the day (" + report.Thousands(rm.DayRows) + " rows): " + rm.How, Value: rm.RemovalSeconds, Unit: "s"},
			report.Row{Figure: "ingest over the whole drain: " + rm.How, Value: rm.DrainRate, Unit: "msg/s"})
	}
	if m := r.Migration; m != nil {
		s.Rows = append(s.Rows,
			report.Row{Figure: "migrate up (0006, 0007) of the table of " + report.Thousands(int64(r.Rows)), Value: m.UpSeconds, Unit: "s"},
			report.Row{Figure: "longest single-row insert during migrate up", Value: m.WriterMaxMs, Unit: "ms"},
			report.Row{Figure: "migrate down 3 (to version 5)", Value: m.DownSeconds, Unit: "s"})
		for i, sec := range m.StepSeconds {
			s.Rows = append(s.Rows, report.Row{Figure: fmt.Sprintf("migration %04d", 6+i), Value: sec, Unit: "s"})
		}
		s.Notes = append(s.Notes, fmt.Sprintf("During migrate up a writer inserted %d rows one at a time, %d of them took over 100 ms. Loading the table of the version before took %.0f s.",
			m.WriterInserts, m.WriterSlow, m.LoadSeconds))
	}
	s.Notes = append(s.Notes, fmt.Sprintf("Loading the day partitions (COPY, indexes, VACUUM ANALYZE) took %.0f s; the table is %.1f GiB with its indexes.",
		r.LoadSeconds, float64(r.TableBytes)/(1<<30)))
	rp.rep.Sections = append(rp.rep.Sections, s)
}
