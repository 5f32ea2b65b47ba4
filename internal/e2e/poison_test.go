package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

// Issue 20: one record, one request, one key — what reaches Signal from
// outside has a bounded cost. These tests run against a real serve process
// (set SIGNAL_E2E_SIGNALCTL to run them against another build).

// produceRecords sends records synchronously, each to its own partition and
// topic (default: the notification topic).
func produceRecords(t *testing.T, broker string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(testkit.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// stored waits until recipient has n rows.
func stored(t *testing.T, env *testkit.Env, recipient string, n int, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, fmt.Sprintf("%d row(s) for %s", n, recipient), func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE recipient_id = $1`, recipient) == n
	})
}

// deadLetters lists the dead letters of topic by partition and offset.
func deadLetters(t *testing.T, env *testkit.Env) map[string]*event.DeadLetter {
	t.Helper()
	dls, err := env.Store.ListDeadLetters(context.Background(), store.DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*event.DeadLetter{}
	for _, d := range dls {
		out[fmt.Sprintf("%s/%d/%d", d.Source.Topic, d.Source.Partition, d.Source.Offset)] = d
	}
	return out
}

func userMessage(recipient string) []byte { return testkit.Message("users", []string{recipient}, nil) }

// Item 1: a record with a NUL in a header key (and a value that is not
// JSON) made a dead letter PostgreSQL refused; the batch was retried for
// ever and a valid record on another partition was never stored. The
// members topic read headers the same way.
func TestARecordWithANULInAHeaderKeyIsADeadLetterAndTheOthersGoOn(t *testing.T) {
	env := testkit.NewEnv(t)
	const membersTopic = "signal.members"
	adm := kadm.NewClient(testkit.Producer(t, env.Broker))
	if _, err := adm.CreateTopic(context.Background(), 2, 1, nil, membersTopic); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, env, "SIGNAL_MEMBERS_TOPIC="+membersTopic)
	hostile := []kgo.RecordHeader{{Key: "trace\x00id", Value: []byte{0, 1}}, {Key: "\xff\xfe", Value: []byte("x")}}
	produceRecords(t, env.Broker,
		&kgo.Record{Partition: 0, Value: []byte("not json"), Headers: hostile},
		&kgo.Record{Partition: 1, Value: userMessage("nul-1")},
		&kgo.Record{Partition: 0, Value: userMessage("nul-2")},
		&kgo.Record{Topic: membersTopic, Partition: 0, Value: []byte("not json either"), Headers: hostile},
		&kgo.Record{Topic: membersTopic, Partition: 0, Key: []byte("org:org-nul"), Value: []byte(`{"scope":"org","scopeId":"org-nul","op":"add","recipientIds":["m1"]}`)},
	)
	stored(t, env, "nul-1", 1, 20*time.Second)
	stored(t, env, "nul-2", 1, 20*time.Second)
	testkit.Eventually(t, 20*time.Second, "the membership change after the hostile record", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM memberships WHERE scope_id = 'org-nul'`) == 1
	})
	dls := deadLetters(t, env)
	for _, key := range []string{testkit.Topic + "/0/0", membersTopic + "/0/0"} {
		d := dls[key]
		if d == nil || d.Reason != event.ReasonMalformedJSON || len(d.Headers) != 2 {
			t.Fatalf("dead letter %s: %+v", key, d)
		}
		for i, h := range hostile {
			if d.Headers[i].Key != h.Key || !bytes.Equal(d.Headers[i].Value, h.Value) {
				t.Errorf("%s: header %d is %q=%q, want %q=%q (byte for byte)", key, i, d.Headers[i].Key, d.Headers[i].Value, h.Key, h.Value)
			}
		}
	}
	if strings.Contains(p.logs.String(), "batch failed, retrying") {
		t.Errorf("a batch was retried: the hostile record stalled its partition for a while:\n%s", p.logs.String())
	}
}

// Item 2: a 431 KB record (2,000 recipients, a 300 KiB string in data)
// took 53 s to store as 600 MB of rows and grew the server to 829 MB.
func TestAHugeRecordIsADeadLetterAndCostsNoRowsNorMemory(t *testing.T) {
	env := testkit.NewEnv(t)
	p := startServe(t, env)
	before := rssOf(t, p)
	recipients := make([]string, 1000)
	for i := range recipients {
		recipients[i] = fmt.Sprintf("huge-%d", i)
	}
	huge := testkit.Message("users", recipients, func(m map[string]any) {
		m["data"] = map[string]any{"blob": strings.Repeat("x", 300<<10)}
	})
	start := time.Now()
	produceRecords(t, env.Broker, &kgo.Record{Partition: 0, Value: huge}, &kgo.Record{Partition: 0, Value: userMessage("after-huge")})
	stored(t, env, "after-huge", 1, 20*time.Second)
	t.Logf("the record after it stored %s after the huge one was produced", time.Since(start).Round(time.Millisecond))
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE recipient_id LIKE 'huge-%'`); n != 0 {
		t.Errorf("%d rows made of the huge record", n)
	}
	if d := deadLetters(t, env)[testkit.Topic+"/0/0"]; d == nil || d.Reason != event.ReasonTooLarge || !bytes.Equal(d.Value, huge) {
		t.Errorf("dead letter: %+v, want too_large with the record's bytes", d)
	}
	if grew := rssOf(t, p) - before; grew > 100<<20 {
		t.Errorf("the server grew by %d MiB for one record", grew>>20)
	}
}

// rssOf is the resident memory of a serve process, in bytes.
func rssOf(t *testing.T, p *proc) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// partitionsOf lists the partitions of notifications.
func partitionsOf(t *testing.T, env *testkit.Env) []store.Partition {
	t.Helper()
	parts, err := env.Store.Partitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return parts
}

// Item 3: records stamped one day apart, from ten days ahead, made a day
// partition each (2,000 of them made every inbox read 1,500 times slower),
// and nothing ever removed them.
func TestRecordsStampedDaysAheadMakeNoPartitionsAndStraysAreRemoved(t *testing.T) {
	env := testkit.NewEnv(t)
	ctx := context.Background()
	today := time.Now().UTC().Truncate(store.Day)
	// A stray an earlier version made for a record 30 days ahead.
	stray := today.Add(30 * store.Day)
	if _, err := env.Store.Pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE %[1]s (LIKE notifications INCLUDING DEFAULTS);
		ALTER TABLE notifications ATTACH PARTITION %[1]s FOR VALUES FROM ('%[2]s') TO ('%[3]s')`,
		pgx.Identifier{store.DayPartition(stray)}.Sanitize(), store.DayBound(stray), store.DayBound(stray.Add(store.Day)))); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, env)
	var recs []*kgo.Record
	const ahead = 40
	for i := 0; i < ahead; i++ {
		recs = append(recs, &kgo.Record{Partition: int32(i % 4), Value: userMessage("future"), Timestamp: today.Add(time.Duration(10+i) * store.Day)})
	}
	recs = append(recs, &kgo.Record{Partition: 0, Value: userMessage("present")})
	produceRecords(t, env.Broker, recs...)
	stored(t, env, "present", 1, 20*time.Second)
	testkit.Eventually(t, 20*time.Second, "every record ahead to be a dead letter", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM dead_letters WHERE reason = 'timestamp_out_of_range'`) == ahead
	})
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE recipient_id = 'future'`); n != 0 {
		t.Errorf("%d rows stored for records days ahead", n)
	}
	limit := store.DayBound(today.Add((store.MaxDaysAhead + 1) * store.Day))
	for _, part := range partitionsOf(t, env) {
		if part.From != nil && string(part.From[:]) >= string(limit[:]) {
			t.Errorf("partition %s lies further ahead than %d days", part.Name, store.MaxDaysAhead)
		}
	}
	testkit.Eventually(t, 20*time.Second, "the maintainer to remove the stray "+store.DayPartition(stray), func() bool {
		return strings.Contains(p.logs.String(), store.DayPartition(stray)) &&
			testkit.Count(t, env.Store, `SELECT count(*) FROM pg_class WHERE relname = $1`, store.DayPartition(stray)) == 0
	})
}

// Item 4: with notifications.retention 0, a record stamped -1 (what v0/v1
// records carry) made "create partition notifications_19691231: empty
// range bound" and stalled every partition.
func TestNegativeAndZeroTimestampsAreDeadLettersAndStallNothing(t *testing.T) {
	env := testkit.NewEnv(t)
	startServe(t, env, "SIGNAL_NOTIFICATIONS_RETENTION=0")
	produceRecords(t, env.Broker,
		&kgo.Record{Partition: 0, Value: userMessage("stamped-minus-one"), Timestamp: time.UnixMilli(-1)},
		&kgo.Record{Partition: 2, Value: userMessage("stamped-zero"), Timestamp: time.UnixMilli(0)},
		&kgo.Record{Partition: 1, Value: userMessage("beside")},
		&kgo.Record{Partition: 0, Value: userMessage("behind")},
	)
	stored(t, env, "beside", 1, 20*time.Second)
	stored(t, env, "behind", 1, 20*time.Second)
	dls := deadLetters(t, env)
	for _, key := range []string{testkit.Topic + "/0/0", testkit.Topic + "/2/0"} {
		if d := dls[key]; d == nil || d.Reason != event.ReasonTimestampOutOfRange {
			t.Errorf("dead letter %s: %+v, want timestamp_out_of_range", key, d)
		}
	}
	for _, part := range partitionsOf(t, env) {
		if strings.HasPrefix(part.Name, "notifications_1969") || strings.HasPrefix(part.Name, "notifications_1970") {
			t.Errorf("partition %s made", part.Name)
		}
	}
}
