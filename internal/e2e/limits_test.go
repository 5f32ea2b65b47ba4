package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/testkit"
)

// The attack of issue 9, item 1: connections with one ordinary token and a
// 4 KiB receive buffer send frames whose unknown field is 65,000 bytes and
// read nothing. An error frame echoes only an excerpt (the kernel's socket
// buffer then holds thousands of them), what waits for them stays within
// their budgets, and the flood is cut by the action rate limit.
func TestAnUnreadErrorFloodIsBoundedAndDisconnected(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	// A low action rate: even a slow machine (the race detector) decodes
	// these frames faster than 2 per second.
	in := env.Serve(t, func(c *config.Config) {
		c.WebSocket.MaxMessageBytes = 128 << 10
		c.WebSocket.ActionRate, c.WebSocket.ActionBurst = 2, 10
	})
	frame := `{"` + strings.Repeat("x", 65000) + `":1}`

	reader := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1"))
	reader.Welcome()
	reader.Send(frame)
	f := reader.Expect("signal/system/error")
	if len(f.Data) > 400 {
		t.Errorf("the error frame echoes %d bytes of the input", len(f.Data))
	}

	const conns = 4
	var wg sync.WaitGroup
	peak := 0.0
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { // the bytes waiting, all along
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				peak = max(peak, metric(t, in, "signal_websocket_queued_bytes"))
			}
		}
	}()
	for i := 0; i < conns; i++ {
		c := testkit.DialNoRead(t, in.WSURL(), testkit.Token(t, "u1"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 2040 && c.Send(frame); j++ {
			}
		}()
		defer func() {
			testkit.Eventually(t, 20*time.Second, "the client to be disconnected", func() bool { return !c.Alive() })
		}()
	}
	wg.Wait()
	close(stop)
	<-stopped
	if v := metric(t, in, "signal_websocket_actions_rate_limited_total"); v < conns {
		t.Errorf("%g actions rate limited", v)
	}
	if limit := float64(conns * in.Config.WebSocket.QueueBytes); peak > limit {
		t.Errorf("%.0f bytes waited at the peak, more than %d budgets (%.0f)", peak, conns, limit)
	}
}

// The same through REST: large sends to a client that does not read
// close it with 3008 once its budget is passed.
func TestRESTSendsToAClientThatDoesNotReadStopAtItsBudget(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, func(c *config.Config) { c.WebSocket.QueueBytes = 256 << 10 })
	c := testkit.DialNoRead(t, in.WSURL(), testkit.Token(t, "slow"))
	testkit.Eventually(t, 10*time.Second, "the client to be registered", func() bool {
		return metric(t, in, "signal_websocket_connections") == 1
	})
	data := strings.Repeat("d", 256<<10)
	for i := 0; i < 64 && metric(t, in, "signal_websocket_slow_clients_dropped_total") == 0; i++ {
		if code, _ := call(t, "POST", in.URL()+"/socket/websocket/clients/rooms/signal%2Fnotification%2Fslow/send", testkit.APIKey, map[string]any{"topic": "big", "data": data}); code != 200 {
			t.Fatalf("send %d: %d", i, code)
		}
		if q := metric(t, in, "signal_websocket_queued_bytes"); q > float64(in.Config.WebSocket.QueueBytes) {
			t.Fatalf("%g bytes queued, budget %d", q, in.Config.WebSocket.QueueBytes)
		}
	}
	testkit.Eventually(t, 20*time.Second, "the client to be dropped as slow and its queue freed", func() bool {
		return metric(t, in, "signal_websocket_slow_clients_dropped_total") == 1 && !c.Alive() &&
			metric(t, in, "signal_websocket_queued_bytes") == 0
	})
}

func TestConnectionLimitsAnswerBeforeTheUpgradeWithAJSONError(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, func(c *config.Config) {
		c.WebSocket.MaxConnectionsPerSubject = 3
		c.WebSocket.UpgradeRate = 0.01 // no refill during the test, however slow the machine
		c.WebSocket.UpgradeBurst = 5
	})
	refused := func(tok string) (int, string, string) {
		t.Helper()
		_, resp, err := testkit.TryDial(t, in.WSURL(), tok)
		if err == nil {
			return 101, "", ""
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		var body struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(b, &body) != nil || body.Error.Message == "" {
			t.Errorf("refusal body %q is not the JSON error", b)
		}
		return resp.StatusCode, body.Error.Code, resp.Header.Get("Retry-After")
	}
	for i := 0; i < 3; i++ {
		testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1")).Welcome()
	}
	// One subject: 400 connections with one token are no longer possible.
	if status, code, retry := refused(testkit.Token(t, "u1")); status != http.StatusTooManyRequests || code != "too_many_connections" || retry == "" {
		t.Errorf("a fourth connection of u1: %d %s (Retry-After %q)", status, code, retry)
	}
	testkit.Dial(t, in.WSURL(), testkit.Token(t, "u2")).Welcome() // another subject: fine
	// One source address: its burst of 5 is spent (4 upgrades and the
	// refusal above: every attempt counts, before the token is checked).
	if status, code, _ := refused(testkit.Token(t, "u3")); status != http.StatusTooManyRequests || code != "rate_limited" {
		t.Errorf("past the upgrade burst: %d %s", status, code)
	}
	if v := metric(t, in, `signal_websocket_refused_total{reason="too_many_connections"}`); v != 1 {
		t.Errorf("refusals by subject: %g", v)
	}
}

func TestATokenThatExpiresEndsItsConnectionWith4001UnlessRefreshed(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	sign := func(sub string, ttl time.Duration, rooms ...string) string {
		tok, err := auth.Sign(testkit.JWTSecret, sub, rooms, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	expiring := testkit.Dial(t, in.WSURL(), sign("u1", 3*time.Second))
	expiring.Welcome()
	refreshed := testkit.Dial(t, in.WSURL(), sign("u2", 3*time.Second, "ops/*"))
	refreshed.Welcome()
	refreshed.Send(`{"action":"join","room":"ops/night"}`)
	refreshed.Expect("signal/system/joined")
	refreshed.Send(`{"action":"refresh","token":"` + sign("u2", time.Hour) + `"}`)
	refreshed.Expect("signal/system/left") // ops/night: the new token does not allow it
	refreshed.Expect("signal/system/refreshed")

	if code := expiring.Closed(10 * time.Second); code != 4001 {
		t.Errorf("close code %d, want 4001", code)
	}
	time.Sleep(time.Second)
	for _, room := range []string{"signal/notification/u1", "signal/notification/u2"} {
		call(t, "POST", in.URL()+"/socket/websocket/clients/rooms/"+strings.ReplaceAll(room, "/", "%2F")+"/send", testkit.APIKey, map[string]any{"topic": "later"})
	}
	refreshed.Expect("later")
}

// Issue 9, item 7: joins with since are database queries, rate limited.
func TestJoinsWithSinceAreRateLimited(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1"))
	c.Welcome()
	const joins = 40
	for i := 0; i < joins; i++ {
		c.Send(`{"action":"join","room":"signal/notification/u1","since":"0190d5b2-0000-8000-8000-000000000000"}`)
	}
	replays, limited := 0, 0
	for replays+limited < joins {
		f := c.Next(10 * time.Second)
		switch {
		case f.Topic == "signal/system/joined":
			replays++
		case f.Topic == "signal/system/error" && strings.Contains(string(f.Data), `"rate_limited"`):
			limited++
		}
	}
	burst := in.Config.WebSocket.ActionBurst
	if replays > burst/10+1 || limited < joins-burst/10-1 {
		t.Errorf("%d replays ran and %d were refused, want at most %d replays", replays, limited, burst/10+1)
	}
}

// The changes catch-ups send are budgeted per token subject, across all its
// connections: 16 connections of one token resuming 2,000 changes each
// (32,000 in all) get no more than the subject's rate allows (issue 20: 32
// connections of one token sustained 22,425 replayed frames a second).
func TestOneSubjectsConnectionsShareOneReplayRate(t *testing.T) {
	env := testkit.NewEnv(t)
	const rate = 1000
	in := env.Serve(t, func(c *config.Config) { c.WebSocket.ReplayRate = rate })
	p := testkit.Producer(t, env.Broker)
	var values [][]byte
	for i := range 2000 {
		values = append(values, testkit.Message("users", []string{"u1"}, paid(fmt.Sprintf("n%d", i))))
	}
	testkit.Produce(t, p, values...)
	waitCaughtUp(t, env.Broker, 30*time.Second)

	tok := testkit.Token(t, "u1")
	var received atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		c := testkit.Dial(t, in.WSURL()+"?since=0", tok)
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.After(3 * time.Second)
			for {
				select {
				case f := <-c.Frames():
					if f.Pos > 0 {
						received.Add(1)
					}
				case <-deadline:
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start).Seconds()
	// The budget's burst (2,000) plus the rate over the time the 16 spent.
	bound := int64(2000 + rate*took*1.2)
	t.Logf("16 connections of one subject received %d changes in %.1fs (bound %d; without a shared budget: up to 32,000)", received.Load(), took, bound)
	if n := received.Load(); n > bound {
		t.Errorf("one subject's connections received %d changes in %.1fs, more than its budget (%d)", n, took, bound)
	}
	if n := received.Load(); n < 2000 {
		t.Errorf("only %d changes in %.1fs: the budget should let the burst through at once", n, took)
	}
}
