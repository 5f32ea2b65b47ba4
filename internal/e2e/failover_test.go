package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/testkit"
)

// defaultSession undoes startServe's short test session timeout: these
// tests measure the defaults.
const defaultSession = "SIGNAL_KAFKA_SESSION_TIMEOUT="

// failoverLimit is what issue 11 asks of the defaults.
const failoverLimit = 10 * time.Second

// partitionFeed produces, every 50 ms, one message to each partition for
// recipient "p<partition>", carrying the partition and the send time. It
// counts what it sent per partition.
type partitionFeed struct {
	mu   sync.Mutex
	sent map[int32]int
	stop chan struct{}
	done chan struct{}
}

func feedPartitions(t *testing.T, broker string, partitions int32) *partitionFeed {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(testkit.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	f := &partitionFeed{sent: map[int32]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer cl.Close()
		for {
			for p := int32(0); p < partitions; p++ {
				v := testkit.Message("users", []string{fmt.Sprintf("p%d", p)}, func(m map[string]any) {
					m["data"] = map[string]any{"p": p, "sentNs": time.Now().UnixNano()}
				})
				if err := cl.ProduceSync(context.Background(), &kgo.Record{Partition: p, Value: v}).FirstErr(); err != nil {
					t.Errorf("produce: %v", err)
					return
				}
				f.mu.Lock()
				f.sent[p]++
				f.mu.Unlock()
			}
			select {
			case <-f.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(f.halt)
	return f
}

func (f *partitionFeed) halt() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

// firstDeliveredAfter waits for the first frame on c of a message sent
// after since and returns when it arrived.
func firstDeliveredAfter(t *testing.T, c *testkit.Client, since time.Time, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		f := c.Next(time.Until(deadline))
		if f.Topic != "observation/signal/notification/created" {
			continue
		}
		var d struct {
			Data struct {
				SentNs int64 `json:"sentNs"`
			} `json:"data"`
		}
		if err := json.Unmarshal(f.Data, &d); err != nil {
			t.Fatalf("frame %s: %v", f.Data, err)
		}
		if d.Data.SentNs > since.UnixNano() {
			return time.Now()
		}
	}
	t.Fatalf("nothing sent after %s was delivered within %s", since.Format(time.RFC3339Nano), timeout)
	return time.Time{}
}

// assignments maps each member's client id to the partitions it owns.
func assignments(t *testing.T, broker string) map[string][]int32 {
	t.Helper()
	adm := kadm.NewClient(testkit.Producer(t, broker))
	groups, err := adm.DescribeGroups(context.Background(), "SIGNAL_NOTIF_CONSUMER_GROUP")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int32{}
	for _, m := range groups["SIGNAL_NOTIF_CONSUMER_GROUP"].Members {
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range c.Topics {
				out[m.ClientID] = append(out[m.ClientID], tp.Partitions...)
			}
		}
	}
	return out
}

// checkStoredOnce checks that every message the feed sent is stored once.
func checkStoredOnce(t *testing.T, env *testkit.Env, f *partitionFeed) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for p, n := range f.sent {
		testkit.Eventually(t, 30*time.Second, fmt.Sprintf("partition %d's %d messages to be stored", p, n), func() bool {
			return testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE source_partition = $1`, p) >= n
		})
		rows := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE source_partition = $1`, p)
		distinct := testkit.Count(t, env.Store, `SELECT count(DISTINCT data->>'sentNs') FROM notifications WHERE source_partition = $1`, p)
		if rows != n || distinct != n {
			t.Errorf("partition %d: %d rows, %d distinct messages; %d sent", p, rows, distinct, n)
		}
	}
}

// With the default settings, the survivor of two instances consumes a
// SIGKILLed instance's partitions within 10 s, and nothing is lost or
// stored twice.
func TestTheSurvivorTakesOverAKilledInstancesPartitionsWithin10s(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs in make test, not with -short")
	}
	env := testkit.NewEnv(t)
	a := startServe(t, env, defaultSession, "APP_ENV_KAFKA_CLIENT_ID=signal-a")
	b := startServe(t, env, defaultSession, "APP_ENV_KAFKA_CLIENT_ID=signal-b")
	var owned map[string][]int32
	testkit.Eventually(t, 20*time.Second, "both instances to own partitions", func() bool {
		owned = assignments(t, env.Broker)
		return len(owned["signal-a"]) > 0 && len(owned["signal-b"]) > 0 && len(owned["signal-a"])+len(owned["signal-b"]) == 4
	})
	clients := map[int32]*testkit.Client{}
	for _, p := range owned["signal-b"] {
		clients[p] = testkit.Dial(t, a.wsURL(), testkit.Token(t, fmt.Sprintf("p%d", p)))
		clients[p].Welcome()
	}
	feed := feedPartitions(t, env.Broker, 4)
	for _, c := range clients { // flowing through B before the kill
		firstDeliveredAfter(t, c, time.Now(), 10*time.Second)
	}
	b.kill()
	killed := time.Now()
	for p, c := range clients {
		took := firstDeliveredAfter(t, c, killed, 30*time.Second).Sub(killed)
		t.Logf("partition %d (was B's): consumed by A %s after the SIGKILL", p, took.Round(time.Millisecond))
		if took > failoverLimit {
			t.Errorf("partition %d: %s after the SIGKILL, want at most %s", p, took.Round(time.Millisecond), failoverLimit)
		}
	}
	feed.halt()
	checkStoredOnce(t, env, feed)
}

// With the default settings, a lone instance restarted after a SIGKILL is
// ready and consuming within 10 s of the kill (the group waits for the
// dead member's session to end first).
func TestARestartedInstanceIsConsumingWithin10sOfASIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs in make test, not with -short")
	}
	for _, tc := range []struct {
		name  string
		extra []string
		limit time.Duration
	}{
		{"with dynamic membership (the default)", []string{defaultSession}, failoverLimit},
		// A session far longer than the wait proves the instance id did it.
		{"with kafka.instance_id (static membership), well before a 60s session ends", []string{"SIGNAL_KAFKA_SESSION_TIMEOUT=60s", "SIGNAL_KAFKA_INSTANCE_ID=signal-0"}, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testkit.NewEnv(t)
			p := startServe(t, env, tc.extra...)
			feed := feedPartitions(t, env.Broker, 4)
			testkit.Eventually(t, 10*time.Second, "records to be stored", func() bool {
				return testkit.Count(t, env.Store, `SELECT count(DISTINCT source_partition) FROM notifications`) == 4
			})
			p.kill()
			killed := time.Now()
			p = launchServe(t, env, tc.extra...)
			ready := p.waitReady(30 * time.Second) // from the launch
			readyAfter := time.Since(killed)
			c := testkit.Dial(t, p.wsURL(), testkit.Token(t, "p0"))
			c.Welcome()
			consuming := firstDeliveredAfter(t, c, time.Now(), 30*time.Second).Sub(killed)
			t.Logf("ready %s after the SIGKILL (%s after the launch), consuming %s after it", readyAfter.Round(time.Millisecond), ready.Round(time.Millisecond), consuming.Round(time.Millisecond))
			if consuming > tc.limit {
				t.Errorf("consuming %s after the SIGKILL, want at most %s", consuming.Round(time.Millisecond), tc.limit)
			}
			feed.halt()
			checkStoredOnce(t, env, feed)
			// A graceful stop leaves the group, static member or not: nobody
			// waits for its session.
			if _, err := p.term(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			if left := assignments(t, env.Broker); len(left) != 0 {
				t.Errorf("members after SIGTERM: %v", left)
			}
		})
	}
}

// An instance that owns no partition (here the topic has one, and the
// other instance holds it) is ready: its WebSocket clients get every
// notification through the relay.
func TestAnInstanceWithNoPartitionIsReadyAndItsClientsGetNotifications(t *testing.T) {
	t.Parallel()
	st, url := pgtest.Open(t)
	env := &testkit.Env{Broker: secureBroker(t, kfake.SeedTopics(1, testkit.Topic)), DBURL: url, Store: st}
	a := env.Serve(t, nil)
	b := env.Serve(t, nil)
	owned := func(in *testkit.Instance) float64 {
		_, s := call(t, "GET", in.URL()+"/status", testkit.APIKey, nil)
		c, _ := s["consumer"].(map[string]any)
		n, _ := c["partitionsOwned"].(float64)
		return n
	}
	testkit.Eventually(t, 20*time.Second, "one instance to own the partition", func() bool { return owned(a)+owned(b) == 1 })
	idle := b
	if owned(b) == 1 {
		idle = a
	}
	code, body := call(t, "GET", idle.URL()+"/readyz", "", nil)
	if code != http.StatusOK {
		t.Fatalf("the instance without a partition: readyz %d %v", code, body)
	}
	c := testkit.Dial(t, idle.WSURL(), testkit.Token(t, "u1"))
	c.Welcome()
	testkit.Produce(t, testkit.Producer(t, env.Broker), testkit.Message("users", []string{"u1"}, paid("relayed")))
	c.Expect("observation/signal/notification/created")
}
