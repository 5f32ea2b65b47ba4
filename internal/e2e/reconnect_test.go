package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/testkit"
)

// A client that keeps reconnecting with ?since=<the last id it received>
// sees every notification exactly once, even when two instances consume the
// topic and the client alternates between them: a notification consumed on
// one instance must never reach the client after a newer one it could
// already have used as its cursor (issue 16).
func TestReconnectingWithSinceAcrossTwoInstancesMissesNothing(t *testing.T) {
	env := testkit.NewEnv(t)
	// A slow machine can let more than the default replay limit (500) pile
	// up between two connections; truncation is another mechanism, with
	// its own error frame and test.
	bigReplay := func(c *config.Config) { c.WebSocket.ReplayLimit = 5000 }
	a := env.Serve(t, bigReplay)
	b := env.Serve(t, bigReplay)
	testkit.Eventually(t, 15*time.Second, "both instances to own partitions", func() bool {
		return partitionsOwned(t, a) > 0 && partitionsOwned(t, b) > 0
	})
	instances := []*testkit.Instance{a, b}

	const total = 3000
	const rate = 1000 // per second
	tok := testkit.Token(t, "u1")
	c := testkit.Dial(t, a.WSURL(), tok)
	c.Welcome()

	var produced atomic.Int64
	go func() {
		p := testkit.Producer(t, env.Broker)
		start := time.Now()
		for i := 0; i < total; i++ {
			// Keys spread the records over every partition, so both
			// instances consume some of them.
			rec := &kgo.Record{Key: []byte(fmt.Sprintf("k-%d", i)), Value: testkit.Message("users", []string{"u1"}, paid(fmt.Sprintf("n-%04d", i)))}
			p.Produce(context.Background(), rec, func(_ *kgo.Record, err error) {
				if err == nil {
					produced.Add(1)
				}
			})
			if wait := time.Until(start.Add(time.Duration(i+1) * time.Second / rate)); wait > 0 {
				time.Sleep(wait)
			}
		}
		p.Flush(context.Background())
	}()

	seen := map[string]int{}
	errs := map[string]int{} // error frames by code
	dups, reconnects := 0, 0
	last := ""
	started := time.Now()
	deadline := started.Add(90 * time.Second)
	settled := time.Time{} // when everything was produced and nothing new arrived since
	for len(seen) < total && time.Now().Before(deadline) {
		// Read for a while (at least until the replay announced by
		// "joined" is in, as a real client would), then drop the
		// connection and come back with the last id received, on the other
		// instance every other time.
		// A reconnection's replay starts with "joined"; a client without a
		// cursor yet keeps its first connection until it has one.
		windowEnd, hardEnd := time.Now().Add(250*time.Millisecond), time.Now().Add(20*time.Second)
		awaitJoined := last != "" && reconnects > 0
		replaying := 0 // frames of the replay still to come
		got := 0
	read:
		for {
			select {
			case f := <-frames(c):
				switch f.Topic {
				case "signal/system/error":
					var e struct{ Code string }
					json.Unmarshal(f.Data, &e)
					errs[e.Code]++
				case "signal/system/joined":
					var j struct{ Replayed int }
					json.Unmarshal(f.Data, &j)
					replaying, awaitJoined = j.Replayed, false
				}
				if f.Topic != "observation/signal/notification/created" {
					continue
				}
				replaying--
				id := notificationID(t, f)
				if seen[id]++; seen[id] > 1 {
					dups++
				}
				last = id
				got++
			case <-time.After(20 * time.Millisecond):
				busy := awaitJoined || replaying > 0 || last == ""
				if now := time.Now(); now.After(hardEnd) || now.After(windowEnd) && !busy {
					break read
				}
			}
		}
		c.Conn().NetConn().Close()
		for _, f := range c.Drain() {
			if f.Topic == "observation/signal/notification/created" {
				id := notificationID(t, f)
				if seen[id]++; seen[id] > 1 {
					dups++
				}
				last = id
				got++
			}
		}
		switch {
		case got > 0 || produced.Load() < total:
			settled = time.Time{}
		case settled.IsZero():
			settled = time.Now()
		}
		if !settled.IsZero() && time.Since(settled) > 10*time.Second {
			break // nothing new for 10 s after the last was produced
		}
		reconnects++
		in := instances[reconnects%2]
		url := in.WSURL()
		if last != "" {
			url += "?since=" + last
		}
		c = testkit.Dial(t, url, tok)
		c.Welcome()
	}
	t.Logf("%d reconnects in %s, %d distinct notifications, %d duplicates, error frames %v", reconnects, time.Since(started).Round(time.Millisecond), len(seen), dups, errs)
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE recipient_id = 'u1'`); n != total {
		t.Fatalf("%d rows stored, want %d", n, total)
	}
	if len(seen) != total {
		t.Errorf("the reconnecting client saw %d of %d notifications", len(seen), total)
		logOrderState(t, env, a, b)
	}
	if dups > 0 {
		t.Errorf("%d notifications arrived twice", dups)
	}
}

// frames exposes the client's receive channel for select loops.
func frames(c *testkit.Client) <-chan testkit.Frame { return c.Frames() }

func partitionsOwned(t *testing.T, in *testkit.Instance) int {
	t.Helper()
	_, st := call(t, "GET", in.URL()+"/status", testkit.APIKey, nil)
	consumer, _ := st["consumer"].(map[string]any)
	n, _ := consumer["partitionsOwned"].(float64)
	return int(n)
}

// When an instance's relay listener is cut, NOTIFYs of that time are lost
// for it: once it listens again, it reads every stream's head and sends
// its clients, in order and on the same connection, what they missed.
func TestARelayListenerCutIsRepairedFromTheDatabase(t *testing.T) {
	env := testkit.NewEnv(t)
	fast := func(c *config.Config) {
		c.Cluster.Heartbeat = 100 * time.Millisecond
		c.Cluster.DeadAfter = 5 * time.Second
		c.WebSocket.SyncCheck = 0 // the repair must come from the relay, not the periodic check
	}
	a := env.Serve(t, fast)
	b := env.Serve(t, fast)
	testkit.Eventually(t, 15*time.Second, "both instances to own partitions", func() bool {
		return partitionsOwned(t, a) > 0 && partitionsOwned(t, b) > 0
	})
	tok := testkit.Token(t, "u1")
	c := testkit.Dial(t, b.WSURL(), tok)
	c.Welcome()
	p := testkit.Producer(t, env.Broker)
	produce := func(n int, label string) {
		for i := 0; i < n; i++ {
			rec := &kgo.Record{Key: []byte(fmt.Sprintf("%s-%d", label, i)), Value: testkit.Message("users", []string{"u1"}, paid(fmt.Sprintf("%s-%d", label, i)))}
			if err := p.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(1, "before")
	if f := c.Expect("observation/signal/notification/created"); f.Pos != 1 {
		t.Fatalf("first change at %d", f.Pos)
	}

	// Cut every relay listener of this database (A's and B's).
	if n := testkit.Count(t, env.Store, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); n != 2 {
		t.Fatalf("cut %d listeners, want 2", n)
	}
	produce(20, "during")
	produce(1, "after")
	want := int64(2)
	for want <= 22 {
		f, ok := nextOrClose(c, 15*time.Second)
		if !ok {
			t.Fatalf("the connection closed, or nothing came, at position %d", want)
		}
		if f.Topic != "observation/signal/notification/created" {
			continue
		}
		if f.Pos != want {
			t.Fatalf("change at position %d, want %d: nothing may be skipped", f.Pos, want)
		}
		want++
	}
	for _, f := range c.Drain() {
		if f.Pos > 0 {
			t.Errorf("a change after the last: %s at %d", f.Topic, f.Pos)
		}
	}
}

// nextOrClose returns the next frame, or false once the connection closed.
func nextOrClose(c *testkit.Client, timeout time.Duration) (testkit.Frame, bool) {
	select {
	case f := <-c.Frames():
		return f, true
	case <-c.Done():
		select {
		case f := <-c.Frames():
			return f, true
		default:
			return testkit.Frame{}, false
		}
	case <-time.After(timeout):
		return testkit.Frame{}, false
	}
}

// An instance whose heartbeat came late is swept as dead by another, with
// its clients and rooms: at its next heartbeat it states them again, and
// asks its clients to reconnect (notifications were not relayed to it
// meanwhile).
func TestASweptInstanceStatesItsClientsAgain(t *testing.T) {
	env := testkit.NewEnv(t)
	fast := func(c *config.Config) {
		c.Cluster.Heartbeat = 100 * time.Millisecond
		c.Cluster.DeadAfter = time.Minute
	}
	a := env.Serve(t, fast)
	b := env.Serve(t, fast)
	testkit.Eventually(t, 15*time.Second, "both instances to own partitions", func() bool {
		return partitionsOwned(t, a) > 0 && partitionsOwned(t, b) > 0
	})
	c := testkit.Dial(t, b.WSURL(), testkit.Token(t, "u1"))
	id := c.Welcome()
	listed := func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM ws_clients WHERE client_id = $1`, id) == 1
	}
	if !listed() {
		t.Fatal("the client is not registered after its welcome")
	}
	// What A's sweep does to B when B's heartbeat is late.
	if _, err := env.Store.Pool.Exec(context.Background(), `
		WITH i AS (DELETE FROM instances WHERE id = $1), cl AS (DELETE FROM ws_clients WHERE instance_id = $1)
		DELETE FROM ws_rooms WHERE instance_id = $1`, b.Info.InstanceID); err != nil {
		t.Fatal(err)
	}
	if code := c.Closed(5 * time.Second); code != 1012 {
		t.Errorf("close code %d, want 1012 (reconnect and replay)", code)
	}
	testkit.Eventually(t, 5*time.Second, "B to register itself again", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM instances WHERE id = $1`, b.Info.InstanceID) == 1
	})
	again := testkit.Dial(t, b.WSURL(), testkit.Token(t, "u1"))
	id = again.Welcome()
	if !listed() {
		t.Error("a client of B is not listed after B came back")
	}
	// Notifications consumed by A reach B's clients again.
	testkit.Produce(t, testkit.Producer(t, env.Broker), testkit.Message("users", []string{"u1"}, nil))
	again.Expect("observation/signal/notification/created")
}

// logOrderState says where the streams stand, when a test fails.
func logOrderState(t *testing.T, env *testkit.Env, instances ...*testkit.Instance) {
	t.Helper()
	rows, err := env.Store.Pool.Query(context.Background(), `SELECT recipient_id, head FROM inbox_states ORDER BY recipient_id LIMIT 20`)
	if err == nil {
		for rows.Next() {
			var r string
			var h int64
			rows.Scan(&r, &h)
			t.Logf("stream %s at %d", r, h)
		}
		rows.Close()
	}
	for _, in := range instances {
		_, st := call(t, "GET", in.URL()+"/status", testkit.APIKey, nil)
		t.Logf("instance %s: checks %v", in.Info.InstanceID, st["checks"])
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
