package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/testkit"
	"github.com/twmb/franz-go/pkg/kadm"
)

func TestTwoInstancesActAsOne(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	fast := func(c *config.Config) {
		c.Cluster.Heartbeat = 100 * time.Millisecond
		c.Cluster.DeadAfter = 5 * time.Second // a loaded machine must not sweep a live instance
	}
	a := env.Serve(t, fast)
	// B consumes another topic: whatever its clients receive of the
	// activity topic was consumed by A and relayed through PostgreSQL.
	if _, err := kadm.NewClient(testkit.Producer(t, env.Broker)).CreateTopic(context.Background(), 1, 1, nil, "unused-topic"); err != nil {
		t.Fatal(err)
	}
	b := env.Serve(t, func(c *config.Config) { fast(c); c.Kafka.Topic = "unused-topic"; c.Kafka.GroupID = "b-only" })

	onB := testkit.Dial(t, b.WSURL(), testkit.Token(t, "u1", "ops/*"))
	idB := onB.Welcome()
	onB.Send(`{"action":"join","room":"ops/night shift"}`)
	onB.Expect("signal/system/joined")
	onA := testkit.Dial(t, a.WSURL(), testkit.Token(t, "u1"))
	onA.Welcome()

	t.Run("a notification consumed by A reaches the client on B", func(t *testing.T) {
		// The welcome is sent once B's registration of the client and its
		// room is committed: no wait is needed before producing.
		testkit.Produce(t, testkit.Producer(t, env.Broker), testkit.Message("users", []string{"u1"}, nil))
		fb := onB.Expect("observation/signal/notification/created")
		fa := onA.Expect("observation/signal/notification/created")
		if string(fa.Data) != string(fb.Data) || fb.Room != "signal/notification/u1" {
			t.Errorf("A got %s, B got %s", fa.Data, fb.Data)
		}
	})
	t.Run("a room send made on A reaches the client on B", func(t *testing.T) {
		code, body := call(t, "POST", a.URL()+"/socket/websocket/clients/rooms/"+url.PathEscape("ops/night shift")+"/send", testkit.APIKey, map[string]any{"topic": "ops/page", "data": map[string]string{"who": "me"}})
		if code != 200 {
			t.Fatalf("%d %v", code, body)
		}
		f := onB.Expect("ops/page")
		if f.Room != "ops/night shift" || string(f.Data) != `{"who":"me"}` {
			t.Errorf("frame %+v", f)
		}
		onA.Quiet(100 * time.Millisecond)
	})
	t.Run("a client send through A reaches the client on B", func(t *testing.T) {
		code, body := call(t, "POST", a.URL()+"/socket/websocket/clients/"+idB+"/send", testkit.APIKey, map[string]any{"topic": "direct", "data": 7})
		if code != 200 {
			t.Fatalf("%d %v", code, body)
		}
		if f := onB.Expect("direct"); string(f.Data) != "7" {
			t.Errorf("frame %+v", f)
		}
	})
	t.Run("a broadcast on B reaches the client on A", func(t *testing.T) {
		if code, _ := call(t, "POST", b.URL()+"/socket/websocket/clients/broadcast", testkit.APIKey, map[string]any{"topic": "all"}); code != 200 {
			t.Fatal(code)
		}
		onA.Expect("all")
		onB.Expect("all")
	})
	t.Run("a payload near the 1 MiB limit crosses over", func(t *testing.T) {
		big := strings.Repeat("z", 1<<20-100)
		code, body := call(t, "POST", a.URL()+"/socket/websocket/clients/"+idB+"/send", testkit.APIKey, map[string]any{"topic": "big", "data": big})
		if code != 200 {
			t.Fatalf("%d %v", code, body)
		}
		var got string
		f := onB.Expect("big")
		if json.Unmarshal(f.Data, &got); got != big {
			t.Errorf("payload of %d bytes arrived as %d", len(big), len(got))
		}
	})
	t.Run("clients on A lists both instances' clients", func(t *testing.T) {
		code, body := call(t, "GET", a.URL()+"/socket/websocket/clients", testkit.APIKey, nil)
		raw, _ := json.Marshal(body)
		if code != 200 || !strings.Contains(string(raw), a.Info.InstanceID) || !strings.Contains(string(raw), b.Info.InstanceID) || !strings.Contains(string(raw), "ops/night shift") {
			t.Errorf("%d %s", code, raw)
		}
	})
	t.Run("a stopped instance leaves no clients behind", func(t *testing.T) {
		if err := b.Stop(); err != nil {
			t.Fatal(err)
		}
		code, body := call(t, "GET", a.URL()+"/socket/websocket/clients", testkit.APIKey, nil)
		raw, _ := json.Marshal(body)
		if code != 200 || strings.Contains(string(raw), b.Info.InstanceID) {
			t.Errorf("after B stopped: %d %s", code, raw)
		}
		if code, _ := call(t, "POST", a.URL()+"/socket/websocket/clients/"+idB+"/send", testkit.APIKey, map[string]any{"topic": "t"}); code != 404 {
			t.Errorf("send to B's old client: %d, want 404", code)
		}
	})
}

func TestADeadInstancesClientsAreSweptSoon(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	a := env.Serve(t, func(c *config.Config) {
		c.Cluster.Heartbeat = 100 * time.Millisecond
		c.Cluster.DeadAfter = 500 * time.Millisecond
	})
	ctx := context.Background()
	// An instance that died without unregistering (SIGKILL): its rows stay
	// until its heartbeat is too old.
	env.Store.Pool.Exec(ctx, `INSERT INTO instances (id, heartbeat_at) VALUES ('ghost', now())`)
	env.Store.Pool.Exec(ctx, `INSERT INTO ws_clients VALUES ('ghost-client', 'ghost', 'u1', '{signal/notification/u1}', now())`)
	env.Store.Pool.Exec(ctx, `INSERT INTO ws_rooms VALUES ('signal/notification/u1', 'ghost')`)
	code, body := call(t, "GET", a.URL()+"/socket/websocket/clients", testkit.APIKey, nil)
	if raw, _ := json.Marshal(body); code != 200 || !strings.Contains(string(raw), "ghost-client") {
		t.Fatalf("the ghost's client must be listed while its heartbeat is fresh: %s", raw)
	}
	testkit.Eventually(t, 5*time.Second, "the ghost instance to be swept", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM ws_clients WHERE instance_id = 'ghost'`) == 0 &&
			testkit.Count(t, env.Store, `SELECT count(*) FROM ws_rooms WHERE instance_id = 'ghost'`) == 0
	})
}

// Until a dead instance is swept, status says it is silent, how long for,
// and what happens to its clients and partitions meanwhile (issue 15).
func TestStatusShowsASilentInstanceUntilItIsSwept(t *testing.T) {
	env := testkit.NewEnv(t)
	a := env.Serve(t, func(c *config.Config) {
		c.Cluster.Heartbeat = time.Second
		c.Cluster.DeadAfter = time.Minute // the ghost stays while the test looks
	})
	serverEnv(t, a)
	ctx := context.Background()
	env.Store.Pool.Exec(ctx, `INSERT INTO instances (id, http_addr, heartbeat_at) VALUES ('ghost', '10.0.0.9:8080', now() - interval '5 seconds')`)
	env.Store.Pool.Exec(ctx, `INSERT INTO ws_clients VALUES ('ghost-client', 'ghost', 'u1', '{signal/notification/u1}', now())`)
	code, body := call(t, "GET", a.URL()+"/status", testkit.APIKey, nil)
	var ghost map[string]any
	for _, in := range body["cluster"].([]any) {
		if m := in.(map[string]any); m["id"] == "ghost" {
			ghost = m
		}
	}
	note, _ := ghost["note"].(string)
	if code != 200 || ghost == nil || ghost["stale"] != true || ghost["clients"] != 1.0 || !strings.Contains(note, "no heartbeat for ") || !strings.Contains(note, "cluster.dead_after") {
		t.Fatalf("status %d, ghost %v", code, ghost)
	}
	// The instance of each partition is known once its consumer recorded
	// its group member id (within a second of joining).
	owner := regexp.MustCompile(`(?m)^\d+\s+(none|\d+)\s+\d+\s+\d+\s+` + regexp.QuoteMeta(a.Info.InstanceID) + `$`)
	var out string
	testkit.Eventually(t, 10*time.Second, "status to name the instance of each partition", func() bool {
		out, _, _ = run(t, "status")
		return owner.MatchString(out)
	})
	for _, want := range []string{"instance    ghost  10.0.0.9:8080  1 client(s), no partition", "its clients are counted until it has been silent for 1m0s (cluster.dead_after)", a.Info.InstanceID + " (this one)"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
