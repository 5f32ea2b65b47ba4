package hub

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// stallSocket makes the server's socket of c tiny, so that writes to a
// client that does not read are partial at once.
func stallSocket(t *testing.T, c *Client) { setSndBuf(t, c.raw, 4096) }

// seqFrame is a small numbered data frame.
func seqFrame(i int) []byte { return []byte(fmt.Sprintf(`{"topic":"seq","data":%d}`, i)) }

func expectSeq(t *testing.T, c *rawClient, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		f := c.next(false)
		if f.op != opText || !bytes.Equal(f.payload, seqFrame(i)) {
			t.Fatalf("frame %d: got %v: lost, cut or out of order", i, f)
		}
	}
}

// The single writer: a frame partly written to a client that does not
// read, frames queued behind it, then the client's close. gws answers the
// close; the answer must come after every queued frame, whole, and be the
// last thing on the wire.
func TestAClientCloseDuringAPartialWriteComesAfterEveryQueuedFrame(t *testing.T) {
	for round := 0; round < 5; round++ {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			s := newTestServer(t, Options{QueueBytes: 64 << 20})
			c := s.dialRaw(s.token("u1", time.Hour), dialOpts{rcvbuf: 4096})
			id := c.welcome() // reads the welcome, then stops reading
			cl := s.client(id)
			stallSocket(t, cl)

			big := []byte(`{"topic":"big","data":"` + strings.Repeat("b", 200<<10+round*4099) + `"}`)
			if !s.h.SendClient(id, big) {
				t.Fatal("the big frame was not taken")
			}
			const small = 300 // more than one writev batch
			for i := 0; i < small; i++ {
				if !s.h.SendClient(id, seqFrame(i)) {
					t.Fatalf("frame %d was not taken", i)
				}
			}
			if q := cl.queuedBytes(); q == 0 {
				t.Fatal("nothing queued: the write was not partial")
			}
			c.sendClose(1000, "bye")
			// gws's reply joins the queue, behind the frames waiting: it is
			// not written by a second writer.
			eventually(t, "the close reply to be queued last", func() bool {
				cl.out.mu.Lock()
				defer cl.out.mu.Unlock()
				if cl.out.b == nil {
					return false
				}
				q := cl.out.b.q
				return cl.out.state == outClosing && len(q) > 1 && q[len(q)-1][0] == 0x80|opClose
			})
			// Now read everything, with the independent decoder.
			if f := c.next(false); f.op != opText || !bytes.Equal(f.payload, big) {
				t.Fatalf("the big frame: %v", f)
			}
			expectSeq(t, c, 0, small)
			c.expectClose(1000)
			eventually(t, "the client to be gone", func() bool { return s.h.Len() == 0 })
		})
	}
}

// A server close (shutdown, 1001) of a client with a partial frame: the
// frame is finished, what was queued follows, then the close frame.
func TestAServerCloseDuringAPartialWriteFinishesTheFrameFirst(t *testing.T) {
	s := newTestServer(t, Options{QueueBytes: 64 << 20})
	c := s.dialRaw(s.token("u1", time.Hour), dialOpts{rcvbuf: 4096})
	id := c.welcome()
	stallSocket(t, s.client(id))
	big := []byte(`{"topic":"big","data":"` + strings.Repeat("b", 300<<10) + `"}`)
	s.h.SendClient(id, big)
	for i := 0; i < 10; i++ {
		s.h.SendClient(id, seqFrame(i))
	}
	s.client(id).closeWith(CloseGoingAway, "server shutting down")
	if s.h.SendClient(id, seqFrame(99)) {
		t.Error("a frame was taken after the close frame")
	}
	if f := c.next(false); !bytes.Equal(f.payload, big) {
		t.Fatalf("the big frame: %v", f)
	}
	expectSeq(t, c, 0, 10)
	c.expectClose(CloseGoingAway)
}

// Past websocket.queue_bytes: the frame being written is finished, the
// frames not started are dropped, a close 3008 follows; counted and
// logged once.
func TestAClientPastItsByteBudgetIsClosedWith3008AfterTheFrameInProgress(t *testing.T) {
	const budget = 256 << 10
	s := newTestServer(t, Options{QueueBytes: budget})
	c := s.dialRaw(s.token("u1", time.Hour), dialOpts{rcvbuf: 4096})
	id := c.welcome()
	cl := s.client(id)
	stallSocket(t, cl)
	frame := []byte(`{"topic":"fill","data":"` + strings.Repeat("f", 32<<10) + `"}`)
	sent := 0
	for s.h.SendClient(id, frame) {
		sent++
		if q := cl.queuedBytes(); q > budget {
			t.Fatalf("%d bytes queued, budget %d", q, budget)
		}
		if sent > 1000 {
			t.Fatal("never closed")
		}
	}
	// More frames are refused, the metric counted it once, the log said it once.
	for i := 0; i < 5; i++ {
		if s.h.SendClient(id, frame) {
			t.Fatal("a closing client took a frame")
		}
	}
	if n := s.logs.count("too slow"); n != 1 {
		t.Errorf("logged %d times, want once", n)
	}
	if v := counterValue(t, s.h.m.SlowDropped); v != 1 {
		t.Errorf("signal_websocket_slow_clients_dropped_total %g", v)
	}
	// The client reads now: whole frames, then 3008, then the end.
	got := 0
	for {
		f := c.next(false)
		if f.op == opClose {
			if f.closeCode() != CloseSlowClient {
				t.Fatalf("close %d", f.closeCode())
			}
			break
		}
		if !bytes.Equal(f.payload, frame) {
			t.Fatalf("frame %d cut: %v", got, f)
		}
		got++
	}
	c.expectEnd()
	if got == 0 || got > sent {
		t.Errorf("read %d frames of %d taken", got, sent)
	}
	eventually(t, "the queued bytes to be given back", func() bool { return s.h.queued.Load() == 0 && s.h.Len() == 0 })
}

// Every byte of what waits counts: error frames a client provokes and
// does not read close it too, and an error frame echoes only an excerpt.
func TestErrorFramesCountAgainstTheBudgetAndEchoOnlyAnExcerpt(t *testing.T) {
	s := newTestServer(t, Options{QueueBytes: 64 << 10, MaxMessageBytes: 128 << 10, ActionRate: 1e6, ActionBurst: 1e6})
	reader := s.dialRaw(s.token("u2", time.Hour), dialOpts{})
	reader.welcome()
	huge := `{"` + strings.Repeat("x", 65000) + `":1}`
	reader.sendText(huge)
	if msg := reader.expectError(CodeBadRequest); len(msg) > maxErrorMessage+8 {
		t.Errorf("the error echoes %d bytes", len(msg))
	}

	c := s.dialRaw(s.token("u1", time.Hour), dialOpts{rcvbuf: 4096})
	id := c.welcome()
	stallSocket(t, s.client(id))
	for i := 0; i < 5000 && s.h.HasClient(id); i++ {
		if c.send(opText, []byte(huge)) != nil {
			break
		}
	}
	eventually(t, "the client that reads nothing to be closed", func() bool { return !s.h.HasClient(id) })
	if v := counterValue(t, s.h.m.SlowDropped); v != 1 {
		t.Errorf("slow clients dropped: %g", v)
	}
}

// A catch-up of a client far behind that reads nothing writes only while
// its queue has room: the server holds at most the budget for it, and the
// client is not closed for it (a client that takes nothing at all is cut
// by the keep-alive, as any other).
func TestACatchUpNeverFillsTheBudget(t *testing.T) {
	m := newMemStreams()
	for range 400 {
		m.add("u1")
	}
	// Big frames: 400 × ~8 KiB is 50 budgets of 64 KiB.
	for i, ch := range m.logs["u1"] {
		m.logs["u1"][i].Frame = []byte(`{"topic":"t","pos":` + strconv.FormatInt(ch.Pos, 10) + `,"data":"` + strings.Repeat("h", 8<<10) + `"}`)
	}
	s := newTestServer(t, Options{QueueBytes: 64 << 10, Streams: m.streams(0)})
	c := s.dialRaw(s.token("u1", time.Hour), dialOpts{rcvbuf: 4096, query: "since=0"})
	id := c.welcome()
	stallSocket(t, s.client(id))
	cl := s.client(id)
	deadline := time.Now().Add(2 * time.Second)
	peak := 0
	for time.Now().Before(deadline) {
		peak = max(peak, cl.queuedBytes())
		time.Sleep(5 * time.Millisecond)
	}
	if peak > 64<<10 {
		t.Errorf("%d bytes queued for a client with a budget of 64 KiB", peak)
	}
	if !s.h.HasClient(id) || counterValue(t, s.h.m.SlowDropped) != 0 {
		t.Error("the catch-up closed a client for its own backlog")
	}
}

func counterValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
