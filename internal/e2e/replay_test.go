package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/testkit"
)

func notificationID(t *testing.T, f testkit.Frame) string {
	t.Helper()
	var n struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(f.Data, &n); err != nil || n.ID == "" {
		t.Fatalf("frame data %s has no id", f.Data)
	}
	return n.ID
}

func subject(t *testing.T, f testkit.Frame) string {
	var n struct {
		Data struct {
			Payment struct {
				Subject string `json:"subject"`
			} `json:"payment"`
		} `json:"data"`
	}
	json.Unmarshal(f.Data, &n)
	return n.Data.Payment.Subject
}

func paid(s string) func(map[string]any) {
	return func(m map[string]any) { m["data"] = map[string]any{"payment": map[string]any{"subject": s}} }
}

func TestReplayOnReconnectSendsExactlyWhatWasMissedThenLive(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	p := testkit.Producer(t, env.Broker)
	tok := testkit.Token(t, "u1")

	c := testkit.Dial(t, in.WSURL(), tok)
	c.Welcome()
	testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, paid("seen")))
	last := notificationID(t, c.Expect("observation/signal/notification/created"))
	c.Close()
	c.Closed(5 * time.Second)

	for i := 1; i <= 5; i++ {
		testkit.Produce(t, p, testkit.Message("users", []string{"u1", "u2"}, paid(fmt.Sprintf("missed-%d", i))))
	}
	testkit.Eventually(t, 10*time.Second, "the 5 missed rows", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE recipient_id = 'u1'`) == 6
	})

	// A reconnecting client names its last id in the connection request.
	again := testkit.Dial(t, in.WSURL()+"?since="+last, tok)
	again.Welcome()
	joined := again.Expect("signal/system/joined")
	if string(joined.Data) != `{"room":"signal/notification/u1","replayed":5}` {
		t.Errorf("joined %s", joined.Data)
	}
	for i := 1; i <= 5; i++ {
		f := again.Expect("observation/signal/notification/created")
		if got := subject(t, f); got != fmt.Sprintf("missed-%d", i) {
			t.Fatalf("replayed #%d is %q: want the missed ones, oldest first", i, got)
		}
	}
	testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, paid("live")))
	if got := subject(t, again.Expect("observation/signal/notification/created")); got != "live" {
		t.Errorf("after the replay got %q, want the live one", got)
	}
	again.Quiet(300 * time.Millisecond)
}

func TestReplayUnderLiveTrafficHasNoGapAndNoDuplicate(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	p := testkit.Producer(t, env.Broker)
	tok := testkit.Token(t, "u1")
	c := testkit.Dial(t, in.WSURL(), tok)
	c.Welcome()
	testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, paid("first")))
	since := notificationID(t, c.Expect("observation/signal/notification/created"))
	c.Close()

	// Notifications keep arriving while the client reconnects and replays.
	const total = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, paid(fmt.Sprintf("n-%03d", i))))
		}
	}()
	time.Sleep(50 * time.Millisecond)
	again := testkit.Dial(t, in.WSURL()+"?since="+since, tok)
	again.Welcome()
	<-done
	seen := map[string]bool{}
	var order []string
	deadline := time.Now().Add(20 * time.Second)
	for len(order) < total && time.Now().Before(deadline) {
		f := again.Next(10 * time.Second)
		if f.Topic != "observation/signal/notification/created" {
			continue
		}
		id := notificationID(t, f)
		if seen[id] {
			t.Fatalf("notification %s (%s) arrived twice; order so far: %v", id, subject(t, f), order)
		}
		seen[id] = true
		order = append(order, subject(t, f))
	}
	if len(order) != total {
		t.Fatalf("got %d distinct notifications, want %d", len(order), total)
	}
	for i, s := range order {
		if s != fmt.Sprintf("n-%03d", i) {
			t.Fatalf("#%d is %s: notifications out of order or missing", i, s)
		}
	}
}

func TestReplayRefusals(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1", "ops/*"))
	c.Welcome()
	reset := func(reason string) {
		t.Helper()
		c.Expect("signal/system/joined")
		f := c.Expect("signal/system/reset")
		if !strings.Contains(string(f.Data), `"reason":"`+reason+`"`) {
			t.Errorf("reset %s, want reason %s", f.Data, reason)
		}
	}
	c.Send(`{"action":"join","room":"signal/notification/u1","since":"not-a-uuid"}`)
	c.ExpectError("invalid_since")
	reset("unknown")
	c.Send(`{"action":"join","room":"signal/notification/u1","since":"0190d5b2-0000-8000-8000-000000000000"}`)
	reset("unknown")
	c.Send(`{"action":"join","room":"signal/notification/u1","since":"99"}`)
	reset("ahead")
	c.Send(`{"action":"join","room":"ops/x","since":"0190d5b2-0000-8000-8000-000000000000"}`)
	c.ExpectError("bad_request")
}

// A join with since sent after connecting (the client is already in its own
// room and may have been pushed newer ones meanwhile) starts the stream over
// from since at its joined reply: a client applies what follows from there
// (dropping what it has by position), and nothing is missed.
func TestJoinWithSinceAfterConnectingMissesNothing(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	p := testkit.Producer(t, env.Broker)
	tok := testkit.Token(t, "u1")
	c := testkit.Dial(t, in.WSURL(), tok)
	c.Welcome()
	testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, paid("first")))
	first := c.Expect("observation/signal/notification/created")
	since := notificationID(t, first)
	c.Close()

	const total = 100
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, paid(fmt.Sprintf("n-%03d", i))))
		}
	}()
	time.Sleep(30 * time.Millisecond)
	again := testkit.Dial(t, in.WSURL(), tok)
	again.Welcome()
	time.Sleep(20 * time.Millisecond)
	again.Send(`{"action":"join","room":"signal/notification/u1","since":"` + since + `"}`)
	<-done
	// Until joined, frames belong to the stream before the join.
	for f := again.Next(10 * time.Second); f.Topic != "signal/system/joined"; f = again.Next(10 * time.Second) {
	}
	cursor := first.Pos
	var order []string
	for len(order) < total {
		f := again.Next(10 * time.Second)
		if f.Pos == 0 {
			continue
		}
		switch {
		case f.Pos <= cursor:
			t.Fatalf("position %d again after %d within one stream", f.Pos, cursor)
		case f.Pos > cursor+1:
			t.Fatalf("position %d after %d: a change was skipped", f.Pos, cursor)
		}
		cursor = f.Pos
		order = append(order, subject(t, f))
	}
	for i, s := range order {
		if s != fmt.Sprintf("n-%03d", i) {
			t.Fatalf("#%d is %s: changes out of order or missing", i, s)
		}
	}
}
