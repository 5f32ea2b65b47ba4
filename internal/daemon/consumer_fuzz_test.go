package daemon_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/signal-notify/signal/internal/daemon"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/ingest"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

// The property test of the consumer (issue 20): a real serve (in-process,
// so that its heap can be watched), a real PostgreSQL and the Kafka
// protocol of a kfake broker, fed arbitrary records — any key, value and
// header bytes, any timestamp (−1, 0, none, far future, past the
// retention), v0 and v1 message sets as well as v2 batches, huge and empty
// values — interleaved with valid ones. Every valid record is stored and
// pushed, every hostile one settled (a dead letter with its reason, or
// skipped as older than the retention), every offset committed within a
// deadline (the consumer never stalls), and the heap stays under
// heapBound.
//
// `go test` (make test) runs the seed corpus below, one round each; `make
// fuzz` mutates the fuzzed record of each round for FUZZTIME.

// heapBound is the documented bound of the whole process (the server and
// this test; docs/operations.md): the records in flight and, per stage, at
// most 32 MiB of rows and their frames. Without the limits of issue 20 one
// of the records below makes 600 MB of rows.
const heapBound = 512 << 20

// settleWithin is how long a round may take to be stored, dead-lettered
// and committed: far above what it takes, far below "never".
const settleWithin = 90 * time.Second

func FuzzConsumerStoresEveryValidRecordWhateverComesBetween(f *testing.F) {
	now := time.Now().UnixMilli()
	// seed, fuzzed record: key, value, header key, header value, timestamp, format (mod 3: v0, v1, v2)
	f.Add(int64(1), []byte("k"), []byte("not json"), "trace\x00id", []byte{0}, now, uint8(2))
	f.Add(int64(2), []byte(nil), []byte(nil), "", []byte(nil), int64(-1), uint8(1))
	f.Add(int64(3), []byte("\xff"), testkit.Message("users", []string{"fz"}, nil), "\xff\xfe", []byte("v"), int64(0), uint8(0))
	f.Add(int64(4), []byte("k"), testkit.Message("users", []string{"fz"}, nil), "h", []byte("v"), int64(math.MaxInt64), uint8(2))
	f.Add(int64(5), []byte("k"), testkit.Message("users", []string{"fz"}, nil), "h", []byte("v"), now+400*24*3600*1000, uint8(1))
	f.Add(int64(6), []byte("k"), []byte(`{"data":`+strings.Repeat(`[`, 5000)), "h", []byte("v"), now, uint8(2))
	f.Add(int64(7), []byte(""), []byte(""), "", []byte(""), int64(math.MinInt64), uint8(2))
	f.Add(int64(8), []byte("k"), testkit.Message("users", []string{"fz"}, nil), "ok", []byte("v"), now, uint8(2))

	h := newFuzzHarness(f)
	f.Fuzz(func(t *testing.T, seed int64, key, value []byte, hkey string, hval []byte, ts int64, format uint8) {
		fuzzed := served{format: format % 3, ts: ts, key: key, value: value, headers: []kmsg.Header{{Key: hkey, Value: hval}}}
		h.round(t, seed, fuzzed)
	})
}

// fuzzHarness is one serve instance fed through a topic this test serves.
type fuzzHarness struct {
	topic   *servedTopic
	env     *testkit.Env
	in      *testkit.Instance
	admin   *kadm.Client
	logs    *logBuffer
	rounds  atomic.Int64
	maxHeap atomic.Uint64
}

func newFuzzHarness(tb testing.TB) *fuzzHarness {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(fuzzPartitions, testkit.Topic),
		kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cluster.Close)
	topic := &servedTopic{parts: make([][]served, fuzzPartitions), added: make(chan struct{})}
	cluster.ControlKey(int16(kmsg.Fetch), topic.handleFetch(cluster))
	st, url := pgtest.Open(tb)
	env := &testkit.Env{Broker: cluster.ListenAddrs()[0], DBURL: url, Store: st}
	// Not testkit.Start: its log goes to tb.Log, which a fuzz target may
	// not call; the log is kept and shown when a round fails.
	cfg := testkit.Config(tb, env.Broker, url)
	cfg.Kafka.ResetOffset = "earliest"
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan daemon.Info, 1)
	ran := make(chan error, 1)
	go func() {
		ran <- daemon.Run(ctx, daemon.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
			OnReady: func(i daemon.Info) { ready <- i }})
	}()
	var info daemon.Info
	select {
	case info = <-ready:
	case err := <-ran:
		cancel()
		tb.Fatalf("serve did not start: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		tb.Fatal("serve did not start within 30s")
	}
	tb.Cleanup(func() { cancel(); <-ran })
	in := &testkit.Instance{Info: info, Config: cfg, Store: st}
	for i := 0; get(in.URL()+"/readyz") != 200; i++ {
		if i == 1500 {
			tb.Fatalf("not ready after 30s:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Broker))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	h := &fuzzHarness{topic: topic, env: env, in: in, admin: kadm.NewClient(cl), logs: logs}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the heap, sampled
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > h.maxHeap.Load() {
				h.maxHeap.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	tb.Cleanup(func() { close(stop); <-done })
	return h
}

const fuzzPartitions = 4

// expectation is what one record must become.
type expectation struct {
	part    int32
	offset  int64
	outcome string // "stored", "expired", a dead-letter reason, or "" (anything, but settled)
	rcpt    string // stored: a recipient only this record has
}

// round feeds one round: records of every hostile kind around valid ones
// (seed picks their order, partitions and sizes) and the fuzzed record,
// then checks the property.
func (h *fuzzHarness) round(t *testing.T, seed int64, fuzzed served) {
	n := h.rounds.Add(1)
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(n)))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's log (warnings and errors):\n%s", h.logs.String())
		}
	})
	pushTo := fmt.Sprintf("p%d", n)
	client := testkit.Dial(t, h.in.WSURL(), testkit.Token(t, pushTo))
	client.Welcome()
	defer client.Close()

	now := time.Now()
	valid := func(i int) (served, string) {
		rcpt := fmt.Sprintf("v%d-%d", n, i)
		return served{format: uint8(1 + rng.IntN(2)), ts: now.UnixMilli(), key: []byte("org-1"),
			value:   testkit.Message("users", []string{pushTo, rcpt}, func(m map[string]any) { m["data"] = map[string]any{"i": i} }),
			headers: []kmsg.Header{{Key: "trace", Value: []byte(rcpt)}}}, rcpt
	}
	var recs []served
	var want []expectation
	add := func(r served, outcome, rcpt string) {
		recs = append(recs, r)
		want = append(want, expectation{outcome: outcome, rcpt: rcpt})
	}
	for i, kind := range rng.Perm(len(hostileKinds)) {
		r, outcome := hostileKinds[kind](n, now, rng)
		add(r, outcome, "")
		v, rcpt := valid(i)
		add(v, "stored", rcpt)
	}
	if rng.IntN(3) == 0 { // the largest valid record: 24 MB of rows
		r, rcpt := largestValid(n, now, pushTo)
		add(r, "stored", rcpt)
	}
	add(fuzzed, "", "")
	v, rcpt := valid(len(recs))
	add(v, "stored", rcpt)

	for i := range recs {
		want[i].part = int32(rng.IntN(fuzzPartitions))
		want[i].offset = h.topic.append(want[i].part, recs[i])
	}
	h.settled(t, want)

	frames := 0
	for _, w := range want {
		if w.outcome == "stored" {
			frames++
		}
	}
	for i := 0; i < frames; i++ {
		if f := client.Next(30 * time.Second); f.Topic != event.TopicNotificationCreated {
			t.Fatalf("frame %d of %d: %s", i, frames, f.Topic)
		}
	}
	if got := h.maxHeap.Load(); got > heapBound {
		t.Fatalf("the heap reached %d MiB, more than the bound of %d MiB", got>>20, heapBound>>20)
	}
	if v := metricOf(t, h.in, "signal_batch_retries_total"); v != 0 {
		t.Fatalf("%v batch retries: a record made the database fail", v)
	}
}

// settled waits until every offset is committed, then checks each record
// became what it must.
func (h *fuzzHarness) settled(t *testing.T, want []expectation) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(settleWithin)
	for {
		committed, err := h.admin.FetchOffsets(ctx, "SIGNAL_NOTIF_CONSUMER_GROUP")
		done := err == nil
		for p := int32(0); p < fuzzPartitions && done; p++ {
			o, ok := committed.Lookup(testkit.Topic, p)
			done = h.topic.end(p) == 0 || ok && o.At == h.topic.end(p)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the consumer stalled: offsets %v not committed to the end after %s", committed, settleWithin)
		}
		time.Sleep(50 * time.Millisecond)
	}
	dls, err := h.env.Store.ListDeadLetters(ctx, store.DeadLetterFilter{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	dead := map[[2]int64]string{}
	for _, d := range dls {
		dead[[2]int64{int64(d.Source.Partition), d.Source.Offset}] = d.Reason
	}
	for i, w := range want {
		reason := dead[[2]int64{int64(w.part), w.offset}]
		switch w.outcome {
		case "":
		case "stored":
			if n := testkit.Count(t, h.env.Store, `SELECT count(*) FROM notifications WHERE recipient_id = $1`, w.rcpt); n < 1 || reason != "" {
				t.Errorf("record %d (%d/%d): %d rows for %s, dead letter %q; want it stored", i, w.part, w.offset, n, w.rcpt, reason)
			}
		case "expired":
			if reason != "" {
				t.Errorf("record %d (%d/%d): dead letter %q, want it skipped as expired", i, w.part, w.offset, reason)
			}
		default:
			if reason != w.outcome {
				t.Errorf("record %d (%d/%d): dead letter %q, want %q", i, w.part, w.offset, reason, w.outcome)
			}
		}
	}
}

// hostileKinds make one hostile record each and say what it must become.
var hostileKinds = []func(round int64, now time.Time, rng *rand.Rand) (served, string){
	func(_ int64, now time.Time, rng *rand.Rand) (served, string) { // random bytes
		b := make([]byte, 1+rng.IntN(2000))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		b[0] = 'x' // never JSON
		return served{format: 2, ts: now.UnixMilli(), value: b, key: b[:min(len(b), 10)]}, event.ReasonMalformedJSON
	},
	func(_ int64, now time.Time, _ *rand.Rand) (served, string) { // NUL and invalid UTF-8 in header keys
		return served{format: 2, ts: now.UnixMilli(), value: []byte("not json"),
			headers: []kmsg.Header{{Key: "a\x00b", Value: []byte{0}}, {Key: "\xff\xfe", Value: nil}}}, event.ReasonMalformedJSON
	},
	func(_ int64, now time.Time, _ *rand.Rand) (served, string) { // empty value
		return served{format: 2, ts: now.UnixMilli(), value: []byte{}}, event.ReasonMalformedJSON
	},
	func(_ int64, now time.Time, _ *rand.Rand) (served, string) { // null value (a tombstone)
		return served{format: 1, ts: now.UnixMilli(), value: nil}, event.ReasonMalformedJSON
	},
	func(round int64, now time.Time, _ *rand.Rand) (served, string) { // data over ingest.max_data_bytes
		return served{format: 2, ts: now.UnixMilli(), value: testkit.Message("users", []string{fmt.Sprintf("x%d", round)}, func(m map[string]any) {
			m["data"] = map[string]any{"s": strings.Repeat("d", ingest.DefaultMaxDataBytes+1)}
		})}, event.ReasonTooLarge
	},
	func(round int64, now time.Time, _ *rand.Rand) (served, string) { // 2,000 × 300 KiB: what made 600 MB of rows
		return served{format: 2, ts: now.UnixMilli(), value: testkit.Message("users", recipients(fmt.Sprintf("h%d-", round), 2000), func(m map[string]any) {
			m["data"] = map[string]any{"s": strings.Repeat("h", 300<<10)}
		})}, event.ReasonTooLarge
	},
	func(round int64, now time.Time, _ *rand.Rand) (served, string) { // rows × bytes over ingest.max_bytes_per_record
		return served{format: 2, ts: now.UnixMilli(), value: testkit.Message("users", recipients(fmt.Sprintf("w%d-", round), 2000), func(m map[string]any) {
			m["data"] = map[string]any{"s": strings.Repeat("w", 40<<10)}
		})}, event.ReasonTooLarge
	},
	func(round int64, now time.Time, _ *rand.Rand) (served, string) { // 10,001 recipients
		return served{format: 2, ts: now.UnixMilli(), value: testkit.Message("users", recipients(fmt.Sprintf("t%d-", round), event.MaxRecipientIDs+1), nil)}, event.ReasonTooManyRecipients
	},
	func(_ int64, now time.Time, _ *rand.Rand) (served, string) { // an organizer nobody belongs to
		return served{format: 2, ts: now.UnixMilli(), value: testkit.Message("org", nil, func(m map[string]any) { m["organizerId"] = "nobody" })}, event.ReasonNoRecipients
	},
	func(_ int64, now time.Time, _ *rand.Rand) (served, string) { // a bad scope
		return served{format: 2, ts: now.UnixMilli(), value: testkit.Message("everyone", nil, nil)}, event.ReasonInvalidScope
	},
	func(round int64, _ time.Time, _ *rand.Rand) (served, string) { // v0: no timestamp at all
		return served{format: 0, value: testkit.Message("users", []string{fmt.Sprintf("z%d", round)}, nil)}, event.ReasonTimestampOutOfRange
	},
	func(round int64, _ time.Time, _ *rand.Rand) (served, string) { // v1 stamped −1 (what v0 records become)
		return served{format: 1, ts: -1, value: testkit.Message("users", []string{fmt.Sprintf("z%d", round)}, nil)}, event.ReasonTimestampOutOfRange
	},
	func(round int64, _ time.Time, _ *rand.Rand) (served, string) { // v2 stamped 0
		return served{format: 2, ts: 0, value: testkit.Message("users", []string{fmt.Sprintf("z%d", round)}, nil)}, event.ReasonTimestampOutOfRange
	},
	func(round int64, now time.Time, rng *rand.Rand) (served, string) { // days ahead: a partition per day, before
		ts := now.Add(time.Duration(2+rng.IntN(5000)) * 24 * time.Hour)
		return served{format: 2, ts: ts.UnixMilli(), value: testkit.Message("users", []string{fmt.Sprintf("z%d", round)}, nil)}, event.ReasonTimestampOutOfRange
	},
	func(round int64, now time.Time, _ *rand.Rand) (served, string) { // older than notifications.retention (90d)
		ts := now.Add(-100 * 24 * time.Hour)
		return served{format: 2, ts: ts.UnixMilli(), value: testkit.Message("users", []string{fmt.Sprintf("z%d", round)}, nil)}, "expired"
	},
}

// largestValid is a record just within every limit: 600 recipients of a
// 40 KiB data (24 MB of rows, stored in one transaction).
func largestValid(round int64, now time.Time, pushTo string) (served, string) {
	rcpts := append(recipients(fmt.Sprintf("b%d-", round), 599), pushTo)
	return served{format: 2, ts: now.UnixMilli(), value: testkit.Message("users", rcpts, func(m map[string]any) {
		m["data"] = map[string]any{"s": strings.Repeat("b", 40<<10)}
	})}, rcpts[0]
}

func recipients(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + fmt.Sprint(i)
	}
	return out
}

// metricOf reads one series of the instance's /metrics.
func metricOf(t *testing.T, in *testkit.Instance, name string) float64 {
	t.Helper()
	resp, err := http.Get(in.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscanf(v, "%g", &f)
			return f
		}
	}
	return 0
}

// served is one record of the served topic, in the format it is served in:
// 0 and 1 are v0 and v1 message sets, 2 a v2 record batch.
type served struct {
	format     uint8
	ts         int64 // milliseconds; v0 has none
	key, value []byte
	headers    []kmsg.Header // v2 only
}

// servedTopic is the notification topic as this test serves it: the
// broker's Fetch requests are answered from here (kfake's own log stays
// empty), so records can be served as v0 and v1 message sets, which kfake
// does not accept from producers, and with any timestamp.
type servedTopic struct {
	mu    sync.Mutex
	parts [][]served
	added chan struct{} // closed and replaced at each append
}

func (s *servedTopic) append(part int32, r served) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parts[part] = append(s.parts[part], r)
	close(s.added)
	s.added = make(chan struct{})
	return int64(len(s.parts[part]) - 1)
}

func (s *servedTopic) end(part int32) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.parts[part]))
}

// handleFetch answers Fetch requests from the served records, waiting up
// to the request's MaxWaitMillis for records (without holding the broker:
// SleepControl).
func (s *servedTopic) handleFetch(c *kfake.Cluster) func(kmsg.Request) (kmsg.Response, error, bool) {
	return func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.FetchRequest)
		if !s.hasData(req) {
			s.mu.Lock()
			added := s.added
			s.mu.Unlock()
			c.SleepControl(func() {
				select {
				case <-added:
				case <-time.After(time.Duration(req.MaxWaitMillis) * time.Millisecond):
				}
			})
		}
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, rt := range req.Topics {
			t := kmsg.NewFetchResponseTopic()
			t.Topic, t.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				p := kmsg.NewFetchResponseTopicPartition()
				p.Partition = rp.Partition
				log := s.parts[rp.Partition]
				p.HighWatermark, p.LastStableOffset, p.LogStartOffset = int64(len(log)), int64(len(log)), 0
				switch {
				case rp.FetchOffset > int64(len(log)):
					p.ErrorCode = 1 // OFFSET_OUT_OF_RANGE
				default:
					size := 0
					for o := rp.FetchOffset; o < int64(len(log)) && size < 1<<20; o++ {
						before := len(p.RecordBatches)
						p.RecordBatches = encodeServed(p.RecordBatches, o, log[o])
						size += len(p.RecordBatches) - before
					}
				}
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp, nil, true
	}
}

func (s *servedTopic) hasData(req *kmsg.FetchRequest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			if p.FetchOffset < int64(len(s.parts[p.Partition])) {
				return true
			}
		}
	}
	return false
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeServed appends r at offset as its format says: a v0 or v1 message
// (CRC-32 over magic to value) or a v2 batch of one record (CRC-32C over
// attributes to the end).
func encodeServed(dst []byte, offset int64, r served) []byte {
	switch r.format {
	case 0, 1:
		var b []byte
		if r.format == 0 {
			m := kmsg.MessageV0{Offset: offset, Magic: 0, Key: r.key, Value: r.value}
			b = m.AppendTo(nil)
		} else {
			m := kmsg.MessageV1{Offset: offset, Magic: 1, Timestamp: r.ts, Key: r.key, Value: r.value}
			b = m.AppendTo(nil)
		}
		binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-12))           // MessageSize: after itself
		binary.BigEndian.PutUint32(b[12:16], crc32.ChecksumIEEE(b[16:])) // CRC: magic onwards
		return append(dst, b...)
	}
	rec := kmsg.Record{Key: r.key, Value: r.value, Headers: r.headers}
	body := rec.AppendTo(nil)
	rec.Length = int32(len(body) - 1) // the varint 0 of Length took one byte
	batch := kmsg.RecordBatch{FirstOffset: offset, PartitionLeaderEpoch: -1, Magic: 2, FirstTimestamp: r.ts, MaxTimestamp: r.ts,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: rec.AppendTo(nil)}
	b := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:21], crc32.Checksum(b[21:], castagnoli))
	return append(dst, b...)
}
