package e2e

// The JavaScript client (clients/js) against real instances, in Node and in
// Chromium: nothing lost across a SIGKILL, a rolling restart and a
// PostgreSQL restart; tabs that share one socket; short tokens kept alive
// without a disconnect; a frozen tab that resumes; the package installed
// from its tarball and its README examples run as written.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/pgcluster"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

// clusterEnv is an environment on a PostgreSQL cluster of the test's own,
// to restart: it returns the cluster and a function that restarts it.
func clusterEnv(t *testing.T) (*testkit.Env, func(down time.Duration)) {
	t.Helper()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "signal-jsclient-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	url := c.DatabaseURL("signal")
	if _, err := store.EnsureDatabase(ctx, url); err != nil {
		t.Fatal(err)
	}
	m, err := store.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	m.Close()
	st, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	restart := func(down time.Duration) {
		t.Helper()
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(down)
		if _, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Port: c.Port}); err != nil {
			t.Fatal(err)
		}
	}
	return &testkit.Env{Broker: testkit.Broker(t), DBURL: url, Store: st}, restart
}

// produceTo sends n messages to recipients, rate per second, numbered from first.
func produceTo(t *testing.T, broker string, recipients []string, first, n, rate int) <-chan struct{} {
	done := make(chan struct{})
	p := testkit.Producer(t, broker)
	go func() {
		defer close(done)
		start := time.Now()
		for i := range n {
			testkit.Produce(t, p, testkit.Message("users", recipients, func(m map[string]any) {
				m["data"] = map[string]any{"i": first + i, "payment": map[string]any{"subject": fmt.Sprintf("n%d", first+i)}}
			}))
			if d := time.Until(start.Add(time.Duration(i+1) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
		}
	}()
	return done
}

// waitAllSeen waits until each named client has seen every stored
// notification of recipient exactly once.
func waitAllSeen(t *testing.T, a *jsAgent, env *testkit.Env, recipient string, timeout time.Duration, names ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, name := range names {
		for {
			diff := compareSeen(a.seen(name), storedIDs(t, env, recipient))
			if diff == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s", name, diff)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func TestJSClientInNodeAndChromium(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	app := newAppServer(t, in.Info.HTTPAddr)
	a := startAgent(t, app.URL())
	a.do(map[string]any{"cmd": "client", "name": "node", "sub": "u1"})
	a.do(map[string]any{"cmd": "tab", "name": "tab", "sub": "u1"})
	a.waitState("node", "live", 20*time.Second)
	a.waitState("tab", "live", 20*time.Second)
	<-produceTo(t, env.Broker, []string{"u1"}, 0, 5, 50)
	waitAllSeen(t, a, env, "u1", 20*time.Second, "node", "tab")
	want := serverCounts(t, in.URL(), "u1")
	testkit.Eventually(t, 10*time.Second, "counts equal to the server's in both", func() bool {
		return sameCounts(a.snapshot("node"), want) && sameCounts(a.snapshot("tab"), want)
	})
	var _ = strings.Contains
}

func TestJSClientSeesEveryNotificationAcrossCrashesAndRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs in make test, not with -short")
	}
	env, restartDB := clusterEnv(t)
	p1, p2 := startServe(t, env), startServe(t, env)
	app := newAppServer(t, p1.addr, p2.addr)
	a := startAgent(t, app.URL())
	a.do(map[string]any{"cmd": "client", "name": "node", "sub": "u1"})
	a.do(map[string]any{"cmd": "tab", "name": "tab", "sub": "u1"})
	a.waitState("node", "live", 20*time.Second)
	a.waitState("tab", "live", 20*time.Second)

	const messages = 600
	produced := produceTo(t, env.Broker, []string{"u1", "u2"}, 0, messages, 40)
	time.Sleep(2 * time.Second)
	t.Log("SIGKILL one instance")
	p1.kill()
	p1 = startServe(t, env)
	app.setBackends(p1.addr, p2.addr)
	time.Sleep(2 * time.Second)
	t.Log("rolling restart")
	for i, p := range []*proc{p2, p1} {
		if _, err := p.term(30 * time.Second); err != nil {
			t.Errorf("instance %d exited with %v", i, err)
		}
		np := startServe(t, env)
		if i == 0 {
			p2 = np
		} else {
			p1 = np
		}
		app.setBackends(p1.addr, p2.addr)
		time.Sleep(time.Second)
	}
	t.Log("PostgreSQL restart")
	restartDB(time.Second)
	<-produced
	waitCaughtUp(t, env.Broker, 60*time.Second)
	if n := len(storedIDs(t, env, "u1")); n != messages {
		t.Fatalf("%d notifications stored for u1, want %d", n, messages)
	}
	waitAllSeen(t, a, env, "u1", 60*time.Second, "node", "tab")
	want := serverCounts(t, "http://"+p1.addr, "u1")
	testkit.Eventually(t, 20*time.Second, "counts equal to the server's", func() bool {
		return sameCounts(a.snapshot("node"), want) && sameCounts(a.snapshot("tab"), want)
	})
	for _, name := range []string{"node", "tab"} {
		s := a.snapshot(name)
		t.Logf("%s: %d reconnects, closes %v, %d repeats dropped, %d gaps, %d resets", name, s.Stats.Reconnects, s.Stats.Closes, s.Stats.Repeats, s.Stats.Gaps, s.Stats.Resets)
		if s.Stats.Reconnects < 3 {
			t.Errorf("%s reconnected %d times: the kill and the restarts must have cut it", name, s.Stats.Reconnects)
		}
	}
}

func TestJSClientTabsShareOneSocket(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	app := newAppServer(t, in.Info.HTTPAddr)
	a := startAgent(t, app.URL())
	a.do(map[string]any{"cmd": "tab", "name": "t1", "sub": "u1"})
	a.do(map[string]any{"cmd": "tab", "name": "t2", "sub": "u1"})
	a.waitState("t1", "live", 20*time.Second)
	a.waitState("t2", "live", 20*time.Second)
	sockets := func() int {
		_, body := call(t, "GET", in.URL()+"/socket/websocket/clients", testkit.APIKey, nil)
		n := 0
		list, _ := body["clients"].([]any)
		for _, c := range list {
			if c.(map[string]any)["subject"] == "u1" {
				n++
			}
		}
		return n
	}
	roles := func() string { return a.snapshot("t1").Role + "," + a.snapshot("t2").Role }
	testkit.Eventually(t, 10*time.Second, "one leader and one follower", func() bool {
		r := roles()
		return r == "leader,follower" || r == "follower,leader"
	})
	if n := sockets(); n != 1 {
		t.Fatalf("%d sockets for u1's two tabs, want 1", n)
	}

	<-produceTo(t, env.Broker, []string{"u1"}, 0, 30, 100)
	waitAllSeen(t, a, env, "u1", 20*time.Second, "t1", "t2")
	// States change from both sides: the REST API and each tab's inbox.
	ids := make([]string, 0, 5)
	for id := range storedIDs(t, env, "u1") {
		if len(ids) < 5 {
			ids = append(ids, id)
		}
	}
	if code, body := call(t, "POST", in.URL()+"/notifications/read?recipientId=u1", testkit.APIKey, map[string]any{"ids": ids[:3]}); code != 200 {
		t.Fatalf("read: %d %v", code, body)
	}
	a.do(map[string]any{"cmd": "call", "name": "t2", "method": "archive", "args": []any{ids[3]}})
	a.do(map[string]any{"cmd": "call", "name": "t1", "method": "markSeen", "args": []any{"all"}})
	want := serverCounts(t, in.URL(), "u1")
	testkit.Eventually(t, 10*time.Second, "counts equal to the server's in both tabs", func() bool {
		return sameCounts(a.snapshot("t1"), want) && sameCounts(a.snapshot("t2"), want)
	})
	s1, s2 := a.snapshot("t1"), a.snapshot("t2")
	if fmt.Sprint(s1.Items) != fmt.Sprint(s2.Items) || len(s1.Items) != 29 {
		t.Errorf("the tabs show different items:\n%v\n%v", s1.Items, s2.Items)
	}

	// The leader's tab closes: the other takes the socket over, and loses nothing.
	leader, other := "t1", "t2"
	if s2.Role == "leader" {
		leader, other = other, leader
	}
	a.do(map[string]any{"cmd": "closeTab", "name": leader})
	testkit.Eventually(t, 10*time.Second, other+" leads", func() bool { return a.snapshot(other).Role == "leader" })
	<-produceTo(t, env.Broker, []string{"u1"}, 30, 10, 100)
	waitAllSeen(t, a, env, "u1", 20*time.Second, other)
	testkit.Eventually(t, 10*time.Second, "one socket again", func() bool { return sockets() == 1 })
}

func TestJSClientFrozenTabResumesWithNothingLost(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	app := newAppServer(t, in.Info.HTTPAddr)
	a := startAgent(t, app.URL())

	// One tab alone: it holds the socket, and is frozen while notifications
	// and state changes arrive.
	a.do(map[string]any{"cmd": "tab", "name": "solo", "sub": "u1"})
	a.waitState("solo", "live", 20*time.Second)
	<-produceTo(t, env.Broker, []string{"u1"}, 0, 5, 100)
	waitAllSeen(t, a, env, "u1", 20*time.Second, "solo")
	a.do(map[string]any{"cmd": "hide", "name": "solo"})
	a.do(map[string]any{"cmd": "freeze", "name": "solo"})
	<-produceTo(t, env.Broker, []string{"u1"}, 5, 20, 100)
	testkit.Eventually(t, 20*time.Second, "25 stored", func() bool { return len(storedIDs(t, env, "u1")) == 25 })
	if code, body := call(t, "POST", in.URL()+"/notifications/read-all?recipientId=u1", testkit.APIKey, nil); code != 200 {
		t.Fatalf("read-all: %d %v", code, body)
	}
	a.do(map[string]any{"cmd": "resume", "name": "solo"})
	a.do(map[string]any{"cmd": "show", "name": "solo"})
	waitAllSeen(t, a, env, "u1", 20*time.Second, "solo")
	want := serverCounts(t, in.URL(), "u1")
	testkit.Eventually(t, 10*time.Second, "the read-all and the counts after the freeze", func() bool {
		s := a.snapshot("solo")
		for _, it := range s.Items {
			if !it.IsRead {
				return false
			}
		}
		return sameCounts(s, want) && want.Unread == 0
	})

	// Two tabs: the follower is frozen, the leader goes on; on resume the
	// follower gets what it missed from the leader.
	a.do(map[string]any{"cmd": "tab", "name": "follower", "sub": "u1"})
	a.waitState("follower", "live", 20*time.Second)
	testkit.Eventually(t, 10*time.Second, "a follower", func() bool { return a.snapshot("follower").Role == "follower" })
	a.do(map[string]any{"cmd": "hide", "name": "follower"})
	a.do(map[string]any{"cmd": "freeze", "name": "follower"})
	<-produceTo(t, env.Broker, []string{"u1"}, 25, 20, 100)
	waitAllSeen(t, a, env, "u1", 20*time.Second, "solo")
	a.do(map[string]any{"cmd": "resume", "name": "follower"})
	a.do(map[string]any{"cmd": "show", "name": "follower"})
	want = serverCounts(t, in.URL(), "u1")
	testkit.Eventually(t, 20*time.Second, "the follower caught up", func() bool {
		seen := a.seen("follower")
		return len(seen) == 20 && sameCounts(a.snapshot("follower"), want)
	})
	for id, n := range a.seen("follower") {
		if n != 1 {
			t.Errorf("the follower saw %s %d times", id, n)
		}
	}
}

// TestJSClientKeepsOneConnectionOnShortTokens: tokens of SIGNAL_JS_TOKEN_TTL
// (default 6s) for SIGNAL_JS_TOKEN_FOR (default 60s) — ten lifetimes, the
// ratio of the issue's 30 s tokens for 5 minutes, which `make
// test-token-soak` runs — on one connection: refreshed before exp every
// time, never closed with 4001 nor reconnected. It runs in parallel with the
// other parallel tests: it mostly waits.
func TestJSClientKeepsOneConnectionOnShortTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute long: runs in make test, not with -short")
	}
	t.Parallel()
	ttl, hold := 6*time.Second, time.Minute
	if s := os.Getenv("SIGNAL_JS_TOKEN_TTL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		ttl = d
	}
	if s := os.Getenv("SIGNAL_JS_TOKEN_FOR"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		hold = d
	}
	env := testkit.NewEnv(t)
	p := startServe(t, env) // a process: testkit's in-process serve cannot run in parallel
	base := "http://" + p.addr
	app := newAppServer(t, p.addr)
	a := startAgent(t, app.URL())
	a.do(map[string]any{"cmd": "client", "name": "node", "sub": "u1", "ttl": ttl.String()})
	a.waitState("node", "live", 20*time.Second)
	clientID := func() string {
		_, body := call(t, "GET", base+"/socket/websocket/clients", testkit.APIKey, nil)
		list, _ := body["clients"].([]any)
		if len(list) != 1 {
			return fmt.Sprintf("%d clients", len(list))
		}
		return list[0].(map[string]any)["id"].(string)
	}
	first := clientID()
	start := time.Now()
	for i := 0; time.Since(start) < hold; i++ {
		time.Sleep(ttl / 2)
		// A notification now and then, on the same connection.
		<-produceTo(t, env.Broker, []string{"u1"}, i, 1, 10)
	}
	waitAllSeen(t, a, env, "u1", 20*time.Second, "node")
	s := a.snapshot("node")
	lifetimes := int(hold / ttl)
	t.Logf("%s tokens for %s: %d refreshes, %d reconnects, closes %v", ttl, hold, s.Stats.Refreshes, s.Stats.Reconnects, s.Stats.Closes)
	if s.Stats.Reconnects != 0 || len(s.Stats.Closes) != 0 || s.State != "live" {
		t.Errorf("the connection was cut: %d reconnects, closes %v, state %s", s.Stats.Reconnects, s.Stats.Closes, s.State)
	}
	if s.Stats.Refreshes < lifetimes-1 {
		t.Errorf("%d refreshes in %d token lifetimes", s.Stats.Refreshes, lifetimes)
	}
	if id := clientID(); id != first {
		t.Errorf("the server's client is %s, it was %s: not one connection", id, first)
	}
	for _, e := range a.eventsOf("node", "error") {
		t.Errorf("error: %s %s", e.Code, e.Message)
	}
}
