package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/event"
)

func TestFanOut(t *testing.T) {
	for _, parallel := range []bool{false, true} {
		name := "one writer"
		if parallel {
			name = "several writers (an audience past parallelFrom)"
		}
		t.Run(name+": a room send reaches each member once, a broadcast every client once", func(t *testing.T) {
			if parallel {
				old := parallelFrom
				parallelFrom = 4
				t.Cleanup(func() { parallelFrom = old })
			}
			s := newTestServer(t, Options{})
			const n = 24
			var members, others []*rawClient
			for i := 0; i < n; i++ {
				c := s.dialRaw(s.token(fmt.Sprintf("u%d", i), time.Hour, "team/*"), dialOpts{})
				s.client(c.welcome())
				if i%2 == 0 {
					c.sendText(`{"action":"join","room":"team/a"}`)
					c.expect(event.TopicJoined)
					members = append(members, c)
				} else {
					others = append(others, c)
				}
			}
			if got := s.h.SendRoom("team/a", []byte(`{"topic":"room","room":"team/a","data":1}`)); got != n/2 {
				t.Errorf("SendRoom reached %d, want %d", got, n/2)
			}
			if got := s.h.Broadcast([]byte(`{"topic":"all","data":2}`)); got != n {
				t.Errorf("Broadcast reached %d, want %d", got, n)
			}
			for _, c := range members {
				c.expect("room")
				c.expect("all")
			}
			for _, c := range others {
				c.expect("all") // and not the room frame before it
			}
			// A stored notification goes to its recipient's room only.
			d := event.RowPushes([]*event.Row{{ID: uuid.New(), RecipientID: "u3", Seq: 1, Type: "T", Data: json.RawMessage(`{}`)}}, nil)
			if got := s.h.Deliver(d); got != 1 {
				t.Errorf("Deliver reached %d", got)
			}
			others[1].expect(event.TopicNotificationCreated)
		})
	}
}

// A client that stops reading within its budget delays no one, and gets
// everything, in order, once it reads again.
func TestASlowClientDelaysNoOneAndLosesNothing(t *testing.T) {
	s := newTestServer(t, Options{QueueBytes: 8 << 20})
	slow := s.dialRaw(s.token("slow", time.Hour), dialOpts{rcvbuf: 4096})
	stallSocket(t, s.client(slow.welcome()))
	fast := s.dialRaw(s.token("fast", time.Hour), dialOpts{})
	fast.welcome()
	payload := strings.Repeat("p", 16<<10)
	start := time.Now()
	for i := 0; i < 200; i++ {
		if got := s.h.Broadcast([]byte(fmt.Sprintf(`{"topic":"b","data":{"i":%d,"p":%q}}`, i, payload))); got != 2 {
			t.Fatalf("broadcast %d reached %d", i, got)
		}
		var d struct{ I int }
		json.Unmarshal(fast.expect("b").Data, &d)
		if d.I != i {
			t.Fatalf("the reading client got %d, want %d", d.I, i)
		}
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("200 broadcasts took %s", took)
	}
	for i := 0; i < 200; i++ {
		var d struct{ I int }
		json.Unmarshal(slow.expect("b").Data, &d)
		if d.I != i {
			t.Fatalf("the slow client got %d, want %d", d.I, i)
		}
	}
}

// A peer that vanished (reset) is forgotten at the next write, whether it
// was idle or reading.
func TestADeadClientIsForgotten(t *testing.T) {
	for _, active := range []bool{false, true} {
		t.Run(fmt.Sprintf("active %v", active), func(t *testing.T) {
			s := newTestServer(t, Options{})
			c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
			id := c.welcome()
			s.client(id)
			if active {
				c.sendText(`{"action":"ping"}`)
				c.expect(event.TopicPong)
			}
			c.conn.(*net.TCPConn).SetLinger(0) // close with a reset
			c.conn.Close()
			eventually(t, "the dead client to be gone", func() bool {
				s.h.SendClient(id, []byte(`{"topic":"x"}`))
				return !s.h.HasClient(id)
			})
			if s.h.queued.Load() != 0 {
				t.Errorf("%d bytes still queued", s.h.queued.Load())
			}
		})
	}
}

// Every way a connection ends: the close frame (if any) is whole and last.
func TestEveryClosePath(t *testing.T) {
	t.Run("the client closes: the server answers 1000", func(t *testing.T) {
		s := newTestServer(t, Options{})
		c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
		c.welcome()
		c.sendClose(1000, "bye")
		c.expectClose(1000)
		eventually(t, "the client to be gone", func() bool { return s.h.Len() == 0 })
	})
	t.Run("shutdown: 1001, and the hub waits for every client", func(t *testing.T) {
		s := newTestServer(t, Options{})
		var cs []*rawClient
		for i := 0; i < 5; i++ {
			c := s.dialRaw(s.token(fmt.Sprintf("u%d", i), time.Hour), dialOpts{})
			s.client(c.welcome())
			cs = append(cs, c)
		}
		done := make(chan struct{})
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s.h.Shutdown(ctx, 200*time.Millisecond)
			close(done)
		}()
		for _, c := range cs {
			c.expectClose(CloseGoingAway)
		}
		<-done
		if s.h.Len() != 0 {
			t.Errorf("%d clients left", s.h.Len())
		}
		if _, status, _ := s.tryDialRaw(s.token("late", time.Hour), dialOpts{}); status == http.StatusSwitchingProtocols {
			t.Error("a connection was upgraded after Shutdown")
		}
	})
	t.Run("a frame over max_message_bytes: 1009, and the sender is not reset", func(t *testing.T) {
		s := newTestServer(t, Options{MaxMessageBytes: 1024})
		c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
		c.welcome()
		// The server stops reading at the header; closing with the rest
		// unread would reset the connection, and a browser that is still
		// sending then reports 1006 instead of the close frame.
		if err := c.send(opText, []byte(`{"action":"join","room":"`+strings.Repeat("r", 4<<20)+`"}`)); err != nil {
			t.Fatalf("the oversized frame could not be sent whole: %v", err)
		}
		c.expectClose(CloseTooLarge)
	})
	t.Run("an unmasked client frame: 1002", func(t *testing.T) {
		s := newTestServer(t, Options{})
		c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
		c.welcome()
		c.conn.Write(textFrame([]byte(`{"action":"ping"}`)))
		c.expectClose(1002)
	})
	t.Run("the token expires: 4001", func(t *testing.T) {
		s := newTestServer(t, Options{})
		c := s.dialRaw(s.token("u1", 1500*time.Millisecond), dialOpts{})
		c.welcome()
		c.expectClose(CloseTokenExpired)
	})
	t.Run("sustained abuse of the action rate: 1008", func(t *testing.T) {
		s := newTestServer(t, Options{ActionRate: 10, ActionBurst: 10})
		c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
		c.welcome()
		for i := 0; i < 40; i++ {
			c.sendText(`{"action":"ping"}`)
		}
		c.expectClose(ClosePolicy)
	})
	t.Run("the budget is passed: 3008", func(t *testing.T) {
		s := newTestServer(t, Options{QueueBytes: 64 << 10})
		c := s.dialRaw(s.token("u1", time.Hour), dialOpts{rcvbuf: 4096})
		id := c.welcome()
		stallSocket(t, s.client(id))
		for s.h.SendClient(id, []byte(`{"topic":"f","data":"`+strings.Repeat("f", 8<<10)+`"}`)) {
		}
		c.expectClose(CloseSlowClient)
	})
	t.Run("a write fails: the connection is dropped without a frame", func(t *testing.T) {
		s := newTestServer(t, Options{})
		c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
		id := c.welcome()
		cl := s.client(id)
		cl.sc.Conn.(*net.TCPConn).CloseWrite() // the next write fails
		if s.h.SendClient(id, []byte(`{"topic":"x"}`)) {
			t.Error("a failed write reported success")
		}
		c.expectEnd()
		eventually(t, "the client to be gone", func() bool { return !s.h.HasClient(id) })
	})
}

// A client that stops answering is cut after missedPings intervals of
// silence; one that answers stays.
func TestKeepAliveCutsASilentPeerAfterThreeIntervals(t *testing.T) {
	const interval = 200 * time.Millisecond
	s := newTestServer(t, Options{PingInterval: interval})
	alive := s.dialRaw(s.token("alive", time.Hour), dialOpts{})
	alive.pong = true
	alive.welcome()
	replies := make(chan wsFrame, 16)
	go func() { // alive keeps reading, so it answers the pings
		for {
			f, err := alive.readOne(time.Minute)
			if err != nil {
				close(replies)
				return
			}
			if f.op == opText {
				replies <- f
			}
		}
	}()
	silent := s.dialRaw(s.token("silent", time.Hour), dialOpts{})
	silent.welcome()
	lastSent := time.Now() // the handshake was its last frame

	pings := 0
	var cut time.Duration
	for {
		f, err := silent.readOne(10 * time.Second)
		if err != nil {
			cut = time.Since(lastSent)
			break
		}
		if f.op == opPing {
			pings++
		}
		if time.Since(lastSent) > 20*time.Second {
			t.Fatalf("the silent client was not cut (%d pings)", pings)
		}
	}
	if pings < 2 {
		t.Errorf("the silent client saw %d pings before the cut", pings)
	}
	if min := missedPings * interval; cut < min || cut > min+3*time.Second {
		t.Errorf("cut after %s, want %s (3 intervals) plus at most one tick", cut, min)
	}
	// The answering client is still served, well past the cut-off.
	time.Sleep(missedPings * interval)
	alive.sendText(`{"action":"ping"}`)
	if f, ok := <-replies; !ok || !strings.Contains(string(f.payload), event.TopicPong) {
		t.Fatalf("the answering client was cut: %v", f)
	}
}

// A client that keeps sending but takes nothing of what it is sent is cut
// after the same time (its writes made no progress).
func TestAPeerThatTakesNothingIsCut(t *testing.T) {
	const interval = 200 * time.Millisecond
	s := newTestServer(t, Options{PingInterval: interval, QueueBytes: 64 << 20})
	c := s.dialRaw(s.token("u1", time.Hour), dialOpts{rcvbuf: 4096})
	id := c.welcome()
	stallSocket(t, s.client(id))
	s.h.SendClient(id, []byte(`{"topic":"big","data":"`+strings.Repeat("b", 1<<20)+`"}`))
	start := time.Now()
	for s.h.HasClient(id) {
		c.send(opPong, nil) // alive, as far as reading goes
		time.Sleep(interval / 4)
		if time.Since(start) > 20*time.Second {
			t.Fatal("never cut")
		}
	}
	if took := time.Since(start); took < missedPings*interval {
		t.Errorf("cut after %s, before %s", took, missedPings*interval)
	}
	if v := counterValue(t, s.h.m.SlowDropped); v != 1 {
		t.Errorf("slow clients dropped %g", v)
	}
}

func TestPingsAreAnsweredWithTheirPayload(t *testing.T) {
	s := newTestServer(t, Options{})
	c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
	c.welcome()
	for _, phase := range []string{"idle (read by the poller)", "active (read by gws)"} {
		c.send(opPing, []byte(phase[:4]))
		f := c.next(true)
		if f.op != opPong || string(f.payload) != phase[:4] {
			t.Fatalf("%s: got %v", phase, f)
		}
		c.sendText(`{"action":"ping"}`) // hands the connection to gws
		c.expect(event.TopicPong)
	}
}

func TestTokenExpiryAndRefresh(t *testing.T) {
	t.Run("a refresh for the same subject moves the expiry and leaves the rooms it no longer allows", func(t *testing.T) {
		t.Parallel()
		s := newTestServer(t, Options{})
		c := s.dialRaw(s.token("u1", 2*time.Second, "ops/*", "team/a"), dialOpts{})
		c.welcome()
		for _, r := range []string{"ops/x", "team/a"} {
			c.sendText(`{"action":"join","room":"` + r + `"}`)
			c.expect(event.TopicJoined)
		}
		c.sendText(`{"action":"refresh","token":"` + s.token("u1", time.Hour, "team/*") + `"}`)
		if f := c.expect(event.TopicLeft); !strings.Contains(string(f.Data), `"ops/x"`) {
			t.Errorf("left %s", f.Data)
		}
		f := c.expect(event.TopicRefreshed)
		var d struct{ ExpiresAt time.Time }
		if json.Unmarshal(f.Data, &d); time.Until(d.ExpiresAt) < 50*time.Minute {
			t.Errorf("refreshed %s", f.Data)
		}
		time.Sleep(3 * time.Second) // past the first token's exp
		c.sendText(`{"action":"ping"}`)
		c.expect(event.TopicPong)
		if got := s.h.SendRoom("ops/x", []byte(`{"topic":"t"}`)); got != 0 {
			t.Error("still in a room the new token does not allow")
		}
		if got := s.h.SendRoom("team/a", []byte(`{"topic":"kept"}`)); got != 1 {
			t.Error("left a room the new token allows")
		}
		c.expect("kept")
	})
	for _, tt := range []struct {
		name, token, code string
	}{
		{"a token for another subject changes nothing", "other", CodeForbidden},
		{"an invalid token changes nothing", "garbage", CodeInvalidToken},
		{"an expired token changes nothing", "expired", CodeInvalidToken},
		{"a refresh without a token changes nothing", "", CodeInvalidToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, Options{})
			c := s.dialRaw(s.token("u1", 2*time.Second), dialOpts{})
			c.welcome()
			exp := time.Now().Truncate(time.Second).Add(2 * time.Second)
			tok := map[string]string{"other": s.token("u2", time.Hour), "garbage": "a.b.c", "expired": expiredToken(t, "u1"), "": ""}[tt.token]
			c.sendText(`{"action":"refresh","token":"` + tok + `"}`)
			c.expectError(tt.code)
			c.expectClose(CloseTokenExpired)
			if time.Now().Before(exp) {
				t.Errorf("closed before the token's exp")
			}
		})
	}
}

func expiredToken(t *testing.T, sub string) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, auth.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Minute))}}).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestActionRateLimit(t *testing.T) {
	t.Run("past the burst, actions get rate_limited; the client stays", func(t *testing.T) {
		s := newTestServer(t, Options{ActionRate: 2, ActionBurst: 10})
		c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
		c.welcome()
		for i := 0; i < 10; i++ {
			c.sendText(`{"action":"ping"}`)
		}
		for i := 0; i < 10; i++ {
			c.expect(event.TopicPong)
		}
		c.sendText(`{"action":"ping"}`)
		c.expectError(CodeRateLimited)
		time.Sleep(time.Second) // two more allowed
		c.sendText(`{"action":"ping"}`)
		c.expect(event.TopicPong)
		if v := counterValue(t, s.h.m.WSRateLimited); v != 1 {
			t.Errorf("rate limited %g", v)
		}
	})
	t.Run("a join with since counts as replayCost actions", func(t *testing.T) {
		s := newTestServer(t, Options{ActionRate: 1, ActionBurst: replayCost, Streams: newMemStreams().streams(0)})
		c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
		c.welcome()
		c.expect(event.TopicSynced)
		c.sendText(`{"action":"join","room":"signal/notification/u1","since":"0"}`)
		c.expect(event.TopicJoined)
		c.expect(event.TopicSynced)
		c.sendText(`{"action":"join","room":"signal/notification/u1","since":"0"}`)
		c.expectError(CodeRateLimited)
	})
}

func TestConnectionLimitsRefuseBeforeTheUpgrade(t *testing.T) {
	t.Run("websocket.max_connections: 503 server_full", func(t *testing.T) {
		s := newTestServer(t, Options{MaxConnections: 2})
		a := s.dialRaw(s.token("a", time.Hour), dialOpts{})
		s.dialRaw(s.token("b", time.Hour), dialOpts{})
		if _, status, err := s.tryDialRaw(s.token("c", time.Hour), dialOpts{}); status != http.StatusServiceUnavailable || !strings.Contains(err.Error(), RefusedFull) {
			t.Fatalf("third connection: %d %v", status, err)
		}
		a.sendClose(1000, "")
		a.expectClose(1000)
		eventually(t, "a slot to be free", func() bool {
			_, status, _ := s.tryDialRaw(s.token("c", time.Hour), dialOpts{})
			return status == http.StatusSwitchingProtocols
		})
	})
	t.Run("websocket.max_connections_per_subject: 429 too_many_connections", func(t *testing.T) {
		s := newTestServer(t, Options{MaxConnectionsPerSubject: 2})
		for i := 0; i < 2; i++ {
			s.dialRaw(s.token("u1", time.Hour), dialOpts{})
		}
		if _, status, err := s.tryDialRaw(s.token("u1", time.Hour), dialOpts{}); status != http.StatusTooManyRequests || !strings.Contains(err.Error(), RefusedSubject) {
			t.Fatalf("third connection of u1: %d %v", status, err)
		}
		s.dialRaw(s.token("u2", time.Hour), dialOpts{}) // another subject is fine
	})
	t.Run("websocket.upgrade_rate: 429 rate_limited per source address", func(t *testing.T) {
		s := newTestServer(t, Options{UpgradeRate: 0.5, UpgradeBurst: 3})
		for i := 0; i < 3; i++ {
			s.dialRaw(s.token(fmt.Sprintf("u%d", i), time.Hour), dialOpts{})
		}
		_, status, err := s.tryDialRaw(s.token("u9", time.Hour), dialOpts{})
		if status != http.StatusTooManyRequests || !strings.Contains(err.Error(), RefusedRate) {
			t.Fatalf("fourth connection: %d %v", status, err)
		}
		if v := counterValue(t, s.h.m.WSRefused.WithLabelValues(RefusedRate)); v != 1 {
			t.Errorf("refused %g", v)
		}
	})
}

func TestAddressBucketsGroupIPv6ByPrefix(t *testing.T) {
	a, _ := addrKey("[2001:db8::1]:5000")
	b, _ := addrKey("[2001:db8::ffff]:6000")
	c, _ := addrKey("[2001:db8:0:1::1]:6000")
	if a != b || a == c {
		t.Errorf("%v %v %v", a, b, c)
	}
	if p, ok := addrKey("127.0.0.2:80"); !ok || p.Bits() != 32 {
		t.Errorf("%v", p)
	}
	if p, _ := addrKey("[::ffff:10.0.0.1]:80"); !p.Addr().Is4() {
		t.Errorf("an IPv4-mapped address is IPv4: %v", p)
	}
}

// Shutdown cancels the replays in progress instead of waiting for them.
// Shutdown while connections are being upgraded: a connection admitted
// before Shutdown is waited for, one that finishes its upgrade after it is
// closed, and nothing races (wg.Add against wg.Wait: run with -race; the
// full suite once caught it in the test server's cleanup).
func TestShutdownDuringUpgradesWaitsForOrClosesEachConnection(t *testing.T) {
	for round := range 10 {
		shutdownDuringUpgrades(t, round)
	}
}

func shutdownDuringUpgrades(t *testing.T, round int) {
	s := newTestServer(t, Options{})
	tok := s.token("u1", time.Minute)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c, _, err := s.tryDialRaw(tok, dialOpts{}); err == nil {
					c.conn.Close()
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { s.h.Shutdown(ctx, 0); close(done) }()
	select {
	case <-done:
	case <-time.After(6 * time.Second):
		t.Fatalf("round %d: Shutdown did not return", round)
	}
	close(stop)
	wg.Wait()
	if ctx.Err() != nil {
		t.Errorf("round %d: Shutdown waited for its deadline: a connection admitted during it was neither waited for nor closed", round)
	}
}
