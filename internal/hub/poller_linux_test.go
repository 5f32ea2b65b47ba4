package hub

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/event"
)

// An idle connection is watched by the poller and holds no goroutine;
// control frames are answered and the connection given back; the first
// data frame hands it to gws for good.
func TestThePollerHandsIdleConnectionsToGwsAtTheFirstDataFrame(t *testing.T) {
	s := newTestServer(t, Options{})
	if s.h.poll == nil {
		t.Fatal("no poller on Linux")
	}
	c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
	cl := s.client(c.welcome())
	idle := func() bool { return !cl.reading.Load() }
	eventually(t, "the connection to be idle on the poller", idle)

	c.send(opPing, []byte("p1"))
	if f := c.next(true); f.op != opPong || string(f.payload) != "p1" {
		t.Fatalf("got %v, want the pong", f)
	}
	eventually(t, "the connection to be given back to the poller", idle)
	c.send(opPong, nil) // an unsolicited pong is noted, not answered
	eventually(t, "the connection to be given back again", idle)

	// A ping and a data frame in one segment: the pong, then the reply.
	c.conn.Write(append(maskedFrame(opPing, []byte("p2")), maskedFrame(opText, []byte(`{"action":"ping"}`))...))
	if f := c.next(true); f.op != opPong || string(f.payload) != "p2" {
		t.Fatalf("got %v, want the pong", f)
	}
	c.expect(event.TopicPong)
	if !cl.reading.Load() {
		t.Error("after a data frame the connection is not gws's")
	}
	time.Sleep(50 * time.Millisecond)
	if !cl.reading.Load() {
		t.Error("gws gave the connection back")
	}
	c.sendText(`{"action":"ping"}`)
	c.expect(event.TopicPong)
}

func TestThePollerFinishesConnectionsThatEnd(t *testing.T) {
	t.Run("the peer closes an idle connection without a close frame", func(t *testing.T) {
		s := newTestServer(t, Options{})
		c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
		id := c.welcome()
		cl := s.client(id)
		eventually(t, "idle", func() bool { return !cl.reading.Load() })
		c.conn.Close()
		eventually(t, "the client to be gone", func() bool { return !s.h.HasClient(id) && s.h.Len() == 0 })
		s.h.poll.mu.Lock()
		n := len(s.h.poll.keys)
		s.h.poll.mu.Unlock()
		if n != 0 {
			t.Errorf("the poller still watches %d connections", n)
		}
	})
	t.Run("the peer half-closes: it still gets the close frame, then the end", func(t *testing.T) {
		s := newTestServer(t, Options{})
		c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
		id := c.welcome()
		cl := s.client(id)
		eventually(t, "idle", func() bool { return !cl.reading.Load() })
		c.conn.(*net.TCPConn).CloseWrite()
		c.expectClose(1000) // gws answers the end of the stream with 1000
		eventually(t, "the client to be gone", func() bool { return !s.h.HasClient(id) })
	})
	t.Run("the server closes an idle connection: OnClose runs though no one was reading", func(t *testing.T) {
		s := newTestServer(t, Options{})
		c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
		id := c.welcome()
		cl := s.client(id)
		eventually(t, "idle", func() bool { return !cl.reading.Load() })
		cl.closeWith(CloseGoingAway, "bye")
		c.expectClose(CloseGoingAway)
		eventually(t, "the client to be gone", func() bool { return !s.h.HasClient(id) })
	})
}

func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	s := newTestServer(t, Options{})
	var clients []*Client
	settle := func() int {
		time.Sleep(200 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	before := settle()
	const n = 50
	for i := 0; i < n; i++ {
		c := s.dialRaw(s.token("u", time.Hour), dialOpts{})
		clients = append(clients, s.client(c.welcome()))
	}
	for _, cl := range clients {
		eventually(t, "idle", func() bool { return !cl.reading.Load() })
	}
	if grew := settle() - before; grew > n/5 {
		t.Errorf("%d idle connections added %d goroutines", n, grew)
	}
}

// A connection the server closes while it opens (after watch looked, before
// the poller took it) gets one ReadLoop, from afterClose: a second one from
// watch would read through the reader the first gave back and crash the
// process.
func TestAConnectionClosedWhileItOpensGetsOneReadLoop(t *testing.T) {
	s := newTestServer(t, Options{})
	closedIn := make(chan bool, 1)
	s.h.beforeWatch = func(cl *Client) {
		cl.closeWith(CloseGoingAway, "bye")
		deadline := time.Now().Add(5 * time.Second)
		// Until afterClose's ReadLoop has ended and the socket is closed
		// (the peer closed too), so that the poller's add fails.
		gone := func() bool {
			return cl.reading.Load() && !s.h.HasClient(cl.id) && cl.raw.Control(func(uintptr) {}) != nil
		}
		for !gone() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		closedIn <- gone()
	}
	c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
	id := c.welcome()
	c.expectClose(CloseGoingAway)
	c.conn.Close()
	if !<-closedIn {
		t.Fatal("afterClose did not start the read loop: the race was not set up")
	}
	eventually(t, "the client to be gone", func() bool { return !s.h.HasClient(id) && s.h.Len() == 0 })
	// A second ReadLoop panics (nil reader) or runs OnClose twice, and
	// the hub's WaitGroup goes negative.
	time.Sleep(100 * time.Millisecond)
}
