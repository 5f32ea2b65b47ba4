package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgcluster"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

// The sync stream's promise, tested the way it broke (issue 21): every
// device ends up showing exactly what the database holds — every
// notification, every state change, the counts — whatever happens in
// between. Each test runs real instances, a real PostgreSQL of its own
// (restarted, or failed over to a promoted replica), real WebSocket
// devices (testkit.SyncClient, the reference client) that reconnect all
// the time, notifications from Kafka and state changes from REST, and ends
// by comparing every device with the database.

// world is instances on one broker and one database, and devices.
type world struct {
	t          *testing.T
	env        *testkit.Env
	primary    *pgcluster.Cluster // the test's own cluster (nil: the shared one)
	replica    *pgcluster.Cluster
	edit       func(*config.Config)
	mu         sync.Mutex
	instances  []*testkit.Instance
	recipients []string
	devices    []*testkit.SyncClient
	// since: clients of recipients of their own that resume with
	// ?since=<the last notification's id> after every close, the
	// protocol's advice before the sync stream (Legacy mode).
	since []*testkit.SyncClient
}

type worldOptions struct {
	ownCluster bool // a cluster of the test's own, to restart
	replica    bool // and a synchronous streaming replica of it
	instances  int
	recipients int
	devices    int // per recipient
	since      int // recipients with one ?since= client each (no state changes)
	edit       func(*config.Config)
}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("sync stream fault test: runs in make test, not with -short")
	}
	w := &world{t: t, edit: o.edit}
	if !o.ownCluster {
		w.env = testkit.NewEnv(t)
	} else {
		w.env = w.ownCluster(o.replica)
	}
	for range o.instances {
		w.start()
	}
	for i := range o.recipients {
		w.recipients = append(w.recipients, fmt.Sprintf("s%d", i))
	}
	var sinceRecipients []string
	for i := range o.since {
		sinceRecipients = append(sinceRecipients, fmt.Sprintf("l%d", i))
	}
	// Every recipient is a member of one organizer: org events reach them all.
	status, body := call(t, "PUT", w.instance(0).URL()+"/memberships/org/org-sync", testkit.APIKey,
		map[string]any{"recipientIds": append(slices.Clone(w.recipients), sinceRecipients...)})
	if status != 200 {
		t.Fatalf("memberships: %d %v", status, body)
	}
	for _, r := range w.recipients {
		for range o.devices {
			w.devices = append(w.devices, testkit.NewSyncClient(t, r, w.pick))
		}
	}
	for _, r := range sinceRecipients {
		c := testkit.NewSyncClient(t, r, w.pick)
		c.Legacy = true
		w.since = append(w.since, c)
	}
	// Traffic reaches them too; state changes come from w.devices only.
	w.recipients = append(w.recipients, sinceRecipients...)
	return w
}

// ownCluster starts a cluster (and a synchronous replica) for this test
// and an env on it; with a replica, the database URL names both hosts and
// target_session_attrs=read-write, as production would.
func (w *world) ownCluster(replica bool) *testkit.Env {
	t := w.t
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "signal-sync-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// With a synchronous replica, commits must wait for it (as in
	// production): a failover to it then loses no committed change.
	if w.primary, err = pgcluster.Start(ctx, pgcluster.Options{Dir: dir + "/primary", SyncCommit: replica}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.primary.Kill() })
	dbURL := w.primary.DatabaseURL("signal")
	migrateUp(t, dbURL)
	if replica {
		if w.replica, err = pgcluster.StartReplica(ctx, w.primary, pgcluster.Options{Dir: dir + "/replica"}, true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.replica.Kill() })
		u, _ := url.Parse(dbURL)
		u.Host = w.primary.HostPort() + "," + w.replica.HostPort()
		q := u.Query()
		q.Set("target_session_attrs", "read-write")
		u.RawQuery = q.Encode()
		dbURL = u.String()
	}
	st, err := store.Open(ctx, dbURL, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &testkit.Env{Broker: testkit.Broker(t), DBURL: dbURL, Store: st}
}

// start adds an instance.
func (w *world) start() *testkit.Instance {
	in := w.env.Serve(w.t, func(c *config.Config) {
		// Every device dials from 127.0.0.1, as through a load balancer.
		c.WebSocket.UpgradeRate = 0
		c.Kafka.SessionTimeout = 2 * time.Second
		c.Cluster.Heartbeat = 500 * time.Millisecond
		if w.edit != nil {
			w.edit(c)
		}
	})
	w.mu.Lock()
	w.instances = append(w.instances, in)
	w.mu.Unlock()
	return in
}

func (w *world) instance(i int) *testkit.Instance {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.instances[i]
}

// pick is a random instance's base URL (devices reconnect anywhere).
func (w *world) pick() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.instances[rand.IntN(len(w.instances))].URL()
}

// run starts the devices, reconnecting every 250 ms; stop ends them. The
// ?since= clients first receive one notification each, live, so that
// every later connection resumes.
func (w *world) run(every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, d := range append(slices.Clone(w.devices), w.since...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Run(ctx, 10*time.Minute) // first session: until the seed arrives
		}()
	}
	w.seedSince()
	cancel()
	wg.Wait()
	ctx, cancel = context.WithCancel(context.Background())
	for _, d := range append(slices.Clone(w.devices), w.since...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Run(ctx, every)
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// seedSince sends each ?since= client one notification and waits until
// it has it.
func (w *world) seedSince() {
	if len(w.since) == 0 {
		return
	}
	t := w.t
	testkit.Eventually(t, 30*time.Second, "the ?since= clients to be welcomed", func() bool {
		for _, d := range w.since {
			if !d.Live() {
				return false
			}
		}
		return true
	})
	var rcpts []string
	for _, d := range w.since {
		rcpts = append(rcpts, d.Recipient)
	}
	p := testkit.Producer(t, w.env.Broker)
	if err := p.ProduceSync(context.Background(), &kgo.Record{Value: testkit.Message("users", rcpts, nil)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the ?since= clients to receive their first notification", func() bool {
		for _, d := range w.since {
			if len(d.Shown()) == 0 {
				return false
			}
		}
		return true
	})
}

// traffic produces rate notifications per second — most to one or two
// recipients, one in fifty to the whole organizer — and makes state
// changes through REST (a tenth as many), until stop, which returns what
// was produced.
func (w *world) traffic(rate int) (stop func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	var produced atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p := testkit.Producer(w.t, w.env.Broker)
		start := time.Now()
		for i := 0; ctx.Err() == nil; i++ {
			scope, rcpts := "users", []string{w.recipients[rand.IntN(len(w.recipients))], w.recipients[rand.IntN(len(w.recipients))]}
			if i%50 == 49 {
				scope, rcpts = "org", nil
			}
			value := testkit.Message(scope, rcpts, func(m map[string]any) {
				m["organizerId"] = "org-sync"
				m["data"] = map[string]any{"i": i}
			})
			p.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: value}, func(_ *kgo.Record, err error) {
				if err == nil {
					produced.Add(1)
				}
			})
			if d := time.Until(start.Add(time.Duration(i+1) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
		}
		p.Flush(context.Background())
	}()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(max(rate/10, 1)))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				w.stateChange()
			}
		}
	}()
	return func() int { cancel(); wg.Wait(); return int(produced.Load()) }
}

// stateChange makes one random state change as a recipient's app would
// (on a random instance); failures (an instance or the database away) are
// what apps see too, and change nothing.
func (w *world) stateChange() {
	d := w.devices[rand.IntN(len(w.devices))]
	var ids []string
	for id := range d.Shown() {
		ids = append(ids, id)
		if len(ids) == 3 {
			break
		}
	}
	base := w.pick()
	paths := []string{"/notifications/read-all", "/notifications/seen"}
	body := any(map[string]any{"all": true})
	if len(ids) > 0 && rand.IntN(4) > 0 {
		path := []string{"read", "unread", "archive", "unarchive", "delete", "seen"}[rand.IntN(6)]
		paths, body = []string{"/notifications/" + path}, map[string]any{"ids": ids}
	}
	for _, p := range paths[:1] {
		_, _ = tryCall("POST", base+p, d.Token, body)
	}
}

// converge waits until every record is consumed and every device has
// caught up with its stream, then stops the devices and compares each
// with the database.
func (w *world) converge(stopDevices func(), timeout time.Duration) {
	t := w.t
	t.Helper()
	waitCaughtUp(t, w.env.Broker, timeout)
	ctx := context.Background()
	testkit.Eventually(t, timeout, "every device to reach its stream's head", func() bool {
		for _, d := range w.devices {
			var head int64
			w.env.Store.Pool.QueryRow(ctx, `SELECT coalesce((SELECT head FROM inbox_states WHERE recipient_id = $1), 0)`, d.Recipient).Scan(&head)
			if !d.Settled(head) {
				return false
			}
		}
		return true
	})
	// A ?since= client has no position to settle on: it must show every
	// notification of its recipient once its next resume has replayed them.
	testkit.Eventually(t, timeout, "every ?since= client to show every notification", func() bool {
		for _, d := range w.since {
			if diff, err := d.Verify(ctx, w.env.Store); err != nil || diff != "" {
				return false
			}
		}
		return true
	})
	stopDevices()
	for _, d := range w.since {
		diff, err := d.Verify(ctx, w.env.Store)
		if err != nil {
			t.Fatal(err)
		}
		if diff != "" {
			t.Errorf("the ?since= client of %s differs from the database: %s", d.Recipient, diff)
		}
		t.Logf("?since= client of %s: %d notifications, %d sessions", d.Recipient, len(d.Shown()), d.Stats().Sessions)
	}
	var sessions, changes, resets, gaps, refused int
	for i, d := range w.devices {
		st := d.Stats()
		sessions, changes, resets, gaps = sessions+st.Sessions, changes+st.Changes, resets+st.Resets, gaps+st.Gaps
		refused += st.Refused
		diff, err := d.Verify(ctx, w.env.Store)
		if err != nil {
			t.Fatal(err)
		}
		if diff != "" {
			t.Errorf("device %d of %s differs from the database: %s", i, d.Recipient, diff)
		}
		if st.Gaps > 0 {
			t.Errorf("device %d of %s saw %d skipped positions", i, d.Recipient, st.Gaps)
		}
	}
	t.Logf("%d devices: %d sessions (%d refused), %d changes applied, %d resets, %d gaps", len(w.devices), sessions, refused, changes, resets, gaps)
}

// tryCall is call without failing the test (the server may be away).
func tryCall(method, u, cred string, body any) (int, error) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Scenario 1 of issue 21: PostgreSQL restarts (fast) under traffic, with
// two instances and devices reconnecting everywhere. Before the sync
// stream, some notifications never reached their devices in 3 runs of 5.
func TestEveryDeviceConvergesAcrossAPostgreSQLRestart(t *testing.T) {
	w := newWorld(t, worldOptions{ownCluster: true, instances: 2, recipients: 12, devices: 2})
	stopDevices := w.run(250 * time.Millisecond)
	stopTraffic := w.traffic(300)
	time.Sleep(2 * time.Second)
	if err := w.primary.Restart(context.Background(), pgcluster.Options{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	t.Logf("%d messages produced", stopTraffic())
	w.converge(stopDevices, 90*time.Second)
}

// Scenario 1 again, with a failover: the primary dies and its synchronous
// replica is promoted; both instances find the new primary by themselves
// (two hosts, target_session_attrs=read-write).
//
// Beside the devices, clients that resume with ?since=<notification id>
// after every close (the protocol before the sync stream, still served)
// must miss nothing either: before the sync stream such a client got
// 2,738 and 2,808 of 3,000 notifications across a failover (issue 23).
func TestEveryDeviceConvergesAcrossAFailoverToAPromotedReplica(t *testing.T) {
	w := newWorld(t, worldOptions{ownCluster: true, replica: true, instances: 2, recipients: 12, devices: 2, since: 4})
	stopDevices := w.run(250 * time.Millisecond)
	stopTraffic := w.traffic(300)
	time.Sleep(2 * time.Second)
	if err := w.primary.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := w.replica.Promote(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	t.Logf("%d messages produced", stopTraffic())
	for i := range 2 {
		w.instance(i).WaitReady()
	}
	w.converge(stopDevices, 90*time.Second)
}

// Scenario 2: an instance joins while traffic flows, and partitions move to
// it at once; devices on the first instance reconnect every 250 ms.
func TestAnInstanceJoiningWhileProducingMissesNothing(t *testing.T) {
	w := newWorld(t, worldOptions{instances: 1, recipients: 6, devices: 2})
	first := w.instance(0).URL()
	for _, d := range w.devices {
		d.URL = func() string { return first }
	}
	stopDevices := w.run(250 * time.Millisecond)
	stopTraffic := w.traffic(1000)
	w.start()
	time.Sleep(3 * time.Second)
	t.Logf("%d messages produced", stopTraffic())
	w.converge(stopDevices, 60*time.Second)
}

// Scenario 4: a device offline while another makes every kind of change
// learns all of them when it comes back, and its counts match.
func TestChangesMadeWhileADeviceIsOfflineReachItOnReconnect(t *testing.T) {
	w := newWorld(t, worldOptions{instances: 2, recipients: 1, devices: 2})
	offline, other := w.devices[0], w.devices[1]
	ctx := context.Background()
	for range 2 {
		if err := offline.Session(ctx, 0, 10*time.Second); err != nil { // first start, then the inbox
			t.Fatal(err)
		}
		other.Session(ctx, 0, 10*time.Second)
	}
	p := testkit.Producer(t, w.env.Broker)
	for i := range 10 {
		testkit.Produce(t, p, testkit.Message("users", []string{"s0"}, paid(fmt.Sprintf("n%d", i))))
	}
	waitCaughtUp(t, w.env.Broker, 30*time.Second)
	offline.Session(ctx, 0, 10*time.Second) // it has the ten
	if n := len(offline.Shown()); n != 10 {
		t.Fatalf("the device shows %d notifications before going offline, want 10", n)
	}
	// Offline now. Another device reads, archives, deletes, marks unread,
	// reads everything, and a few more arrive.
	other.Session(ctx, 0, 10*time.Second)
	var ids []string
	for id := range other.Shown() {
		ids = append(ids, id)
	}
	base := w.instance(1).URL()
	for _, c := range []struct {
		path string
		ids  []string
	}{{"read", ids[:2]}, {"archive", ids[2:4]}, {"delete", ids[4:5]}, {"unread", ids[0:1]}, {"seen", ids[5:6]}} {
		if status, err := tryCall("POST", base+"/notifications/"+c.path, other.Token, map[string]any{"ids": c.ids}); err != nil || status != 200 {
			t.Fatalf("%s: %d %v", c.path, status, err)
		}
	}
	testkit.Produce(t, p, testkit.Message("users", []string{"s0"}, paid("late")))
	waitCaughtUp(t, w.env.Broker, 30*time.Second)
	if status, err := tryCall("POST", base+"/notifications/read-all", other.Token, nil); err != nil || status != 200 {
		t.Fatalf("read-all: %d %v", status, err)
	}
	testkit.Produce(t, p, testkit.Message("users", []string{"s0"}, paid("after read-all")))
	waitCaughtUp(t, w.env.Broker, 30*time.Second)
	// Back online, on the other instance.
	if err := offline.Session(ctx, 0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	diff, err := offline.Verify(ctx, w.env.Store)
	if err != nil {
		t.Fatal(err)
	}
	if diff != "" {
		t.Errorf("the device that was offline differs from the database: %s", diff)
	}
	c := offline.Counts()
	if c == nil || *c != (event.Counts{Unread: 1, Unseen: 1, Total: 9}) {
		t.Errorf("counts %+v, want the one after read-all unread and unseen, of 9 (10 + 2 − 2 archived − 1 deleted)", c)
	}
}

// A device 20,000 changes behind catches up in order, paged and paced,
// with nothing missing and nothing twice.
func TestACatchUpOf20000MissedChanges(t *testing.T) {
	w := newWorld(t, worldOptions{instances: 1, recipients: 1, devices: 1, edit: func(c *config.Config) {
		c.WebSocket.ReplayRate = 0 // the rate has its own tests; this one is about order and completeness
	}})
	d := w.devices[0]
	ctx := context.Background()
	d.Session(ctx, 0, 10*time.Second)
	d.Session(ctx, 0, 10*time.Second)
	p := testkit.Producer(t, w.env.Broker)
	const n = 20000
	var values [][]byte
	for i := range n {
		values = append(values, testkit.Message("users", []string{"s0"}, paid(fmt.Sprintf("n%d", i))))
		if len(values) == 1000 {
			testkit.Produce(t, p, values...)
			values = nil
		}
	}
	waitCaughtUp(t, w.env.Broker, 60*time.Second)
	start := time.Now()
	if err := d.Session(ctx, 0, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	t.Logf("caught up %d changes in %s (%d sessions)", st.Changes, time.Since(start).Round(time.Millisecond), st.Sessions)
	if st.Changes != n || st.Gaps != 0 || st.Repeats != 0 {
		t.Errorf("applied %d changes (%d gaps, %d repeats), want %d in order", st.Changes, st.Gaps, st.Repeats, n)
	}
	if diff, err := d.Verify(ctx, w.env.Store); err != nil || diff != "" {
		t.Errorf("after the catch-up: %s %v", diff, err)
	}
}

// A rolling restart leaves the last instance back empty: the others hand
// it clients (1012, a few each round) until the counts are even, and the
// devices that moved miss nothing (issue 23).
func TestARestartedInstanceGetsItsShareOfClientsBack(t *testing.T) {
	w := newWorld(t, worldOptions{instances: 1, recipients: 60, devices: 2, edit: func(c *config.Config) {
		c.Cluster.RebalanceInterval = 300 * time.Millisecond
	}})
	var next atomic.Int64
	for _, d := range w.devices {
		d.URL = func() string { // a round robin over the instances up now
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.instances[int(next.Add(1))%len(w.instances)].URL()
		}
	}
	stopDevices := w.run(10 * time.Minute) // they move only when closed
	testkit.Eventually(t, 30*time.Second, "120 devices started (inbox loaded, resumed) on the first instance", func() bool {
		for _, d := range w.devices {
			if d.Stats().Sessions < 2 {
				return false
			}
		}
		return testkit.Count(t, w.env.Store, `SELECT count(*) FROM ws_clients`) == 120
	})
	w.start() // empty
	stopTraffic := w.traffic(100)
	counts := func() (a, b int) {
		rows, _ := w.env.Store.ListInstances(context.Background())
		for _, in := range rows {
			if in.ID == w.instance(0).Info.InstanceID {
				a = in.Clients
			} else {
				b = in.Clients
			}
		}
		return a, b
	}
	testkit.Eventually(t, 30*time.Second, "the second instance to hold at least 0.8 of its share", func() bool {
		a, b := counts()
		return a+b == 120 && b >= 48
	})
	a, b := counts()
	t.Logf("clients: first instance %d, second %d", a, b)
	t.Logf("%d messages produced", stopTraffic())
	w.converge(stopDevices, 60*time.Second)
	moved := 0
	closes := map[int]int{}
	errs := map[string]int{}
	for _, d := range w.devices {
		moved += d.Stats().Closes[1012]
		for c, n := range d.Stats().Closes {
			closes[c] += n
		}
		for c, n := range d.Stats().Errors {
			errs[c] += n
		}
	}
	t.Logf("closes by code %v, error frames %v", closes, errs)
	if moved < 40 {
		t.Errorf("%d devices were closed with 1012, want at least 40 moved", moved)
	}
}
