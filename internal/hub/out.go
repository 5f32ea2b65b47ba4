package hub

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// outbound is a client's one way to its socket. Every byte the server
// sends — data frames, pings, pongs, its close frames and the ones gws
// writes (sockConn) — goes through it, in order, so no frame is ever
// written inside another. It is shaped like nats-server's per-client
// outbound buffer (flushOutbound): at most one writer owns the socket at
// a time, and what waits is bounded in bytes.
//
//   - Nothing queued (the common case): the caller writes with one
//     non-blocking write, under mu. No goroutine, no copy: the same bytes
//     go to every receiver of a frame.
//   - What the socket does not take at once (the rest of a frame, and
//     every frame behind it) is queued, before mu is released, and a
//     flusher goroutine writes the queue with mu released; it ends when
//     the queue is empty. An idle connection holds no goroutine.
//   - Everything queued counts against websocket.queue_bytes: past it the
//     frames not yet started are dropped, a close frame (3008) follows
//     the one being written, and the client is closed.
//   - A close frame ends the stream: nothing is accepted after it; once it
//     is written the socket is half-closed and drained for up to
//     closeTimeout (see endLocked), or closed at closeTimeout if the peer
//     takes nothing.
type outbound struct {
	mu sync.Mutex
	b  *backlog // what waits; nil while nothing does (an idle connection)
	// flushing: a flusher goroutine owns the socket. lingering: half-closed
	// after a close frame (see endLocked).
	flushing, lingering bool
	state               outState
}

// backlog is what waits for a client: allocated when something has to
// wait, dropped when nothing does, so an idle connection pays 8 bytes.
type backlog struct {
	q [][]byte // oldest first; q[0] may be the rest of a frame partly written
	// bytes waiting (plus frameCost per frame): counted against the budget.
	bytes    int
	inflight int  // frames at the head of q handed to the flusher's current write
	midFrame bool // q[0] is the rest of a frame whose start was written
}

// backlogLocked returns the backlog, allocating it.
func (o *outbound) backlogLocked() *backlog {
	if o.b == nil {
		o.b = &backlog{}
	}
	return o.b
}

// tidyLocked drops an empty backlog.
func (o *outbound) tidyLocked() {
	if b := o.b; b != nil && len(b.q) == 0 && b.inflight == 0 {
		o.b = nil
	}
}

// waiting is the bytes counted against the budget.
func (o *outbound) waitingLocked() int {
	if o.b == nil {
		return 0
	}
	return o.b.bytes
}

// queueLen is how many frames wait.
func (o *outbound) queueLen() int {
	if o.b == nil {
		return 0
	}
	return len(o.b.q)
}

type outState uint8

const (
	outOpen    outState = iota
	outClosing          // a close frame is queued: nothing more is taken
	outDone             // the socket is closed
)

const (
	// frameCost is what a queued frame costs besides its bytes: its slot
	// in the queue and the allocation around it.
	frameCost = 64
	// closeTimeout bounds how long a close frame may wait for a peer
	// that does not read before the socket is closed anyway.
	closeTimeout = time.Second
	// flushBatch is how many queued frames one writev takes at most.
	flushBatch = 64
)

// write sends a frame's wire bytes, which are shared (never modified) and
// not kept once written. False when the frame was not taken: the client is
// closing, or this frame passed its budget and closed it.
func (c *Client) write(wire []byte) bool {
	o := &c.out
	o.mu.Lock()
	if o.state != outOpen {
		o.mu.Unlock()
		c.hub.m.FramesDropped.Inc()
		return false
	}
	if !o.flushing && o.queueLen() == 0 {
		n, err := writeNow(c.raw, wire)
		if err != nil {
			o.mu.Unlock()
			c.abort("write failed: " + err.Error())
			return false
		}
		if n == len(wire) {
			o.mu.Unlock()
			return true
		}
		// The rest is queued before unlocking: nothing can be written
		// between the part written and the rest.
		wire = wire[n:]
		if !c.fitsLocked(len(wire)) && n == 0 {
			return c.overBudgetLocked()
		}
		o.backlogLocked().midFrame = n > 0
		// A frame already started is finished whatever its size.
		c.queueLocked(wire)
		if !c.fitsLocked(0) {
			return c.overBudgetLocked()
		}
		o.mu.Unlock()
		return true
	}
	if !c.fitsLocked(len(wire)) {
		return c.overBudgetLocked()
	}
	c.queueLocked(wire)
	o.mu.Unlock()
	return true
}

// fitsLocked reports whether n more bytes (one more frame) stay within
// the budget.
func (c *Client) fitsLocked(n int) bool {
	o := &c.out
	extra := 0
	if n > 0 {
		extra = n + frameCost
	}
	return o.waitingLocked()+extra <= c.hub.opts.QueueBytes
}

// queueLocked appends b and makes sure a flusher runs; mu stays held.
func (c *Client) queueLocked(p []byte) {
	o := &c.out
	b := o.backlogLocked()
	b.q = append(b.q, p)
	b.bytes += len(p) + frameCost
	c.hub.queued.Add(int64(len(p) + frameCost))
	if !o.flushing {
		o.flushing = true
		go c.flush()
	}
}

// overBudgetLocked closes a client whose queue passed the budget: frames
// not yet started are dropped and a close frame 3008 follows the one being
// written. It unlocks mu and returns false (the frame was not taken).
func (c *Client) overBudgetLocked() bool {
	o := &c.out
	closed := c.closeLocked(closeFrame(CloseSlowClient, "slow client: websocket.queue_bytes exceeded"), true)
	o.mu.Unlock()
	c.hub.m.FramesDropped.Inc()
	c.hub.m.SlowDropped.Inc()
	c.hub.log.Warn("websocket client too slow, disconnecting", "client", c.id, "sub", c.subject(), "queue_bytes", c.hub.opts.QueueBytes)
	if closed {
		c.socketClosed()
	}
	return false
}

// sendClose queues a close frame (wire bytes) after what is queued, or,
// with discard, after only the frame being written. Nothing is sent after
// it; the socket is closed once it is written. False when the client was
// closing already.
func (c *Client) sendClose(frame []byte, discard bool) bool {
	c.out.mu.Lock()
	open := c.out.state == outOpen
	closed := c.closeLocked(frame, discard)
	c.out.mu.Unlock()
	if closed {
		c.socketClosed()
	}
	return open
}

// closeLocked moves an open client to closing with frame last in its
// queue. It returns true when the frame was written at once and the socket
// closed (the caller then calls socketClosed, without mu).
func (c *Client) closeLocked(frame []byte, discard bool) bool {
	o := &c.out
	if o.state != outOpen {
		return false
	}
	o.state = outClosing
	if b := o.b; discard && b != nil && len(b.q) > 0 {
		keep := b.inflight // being written: they cannot be taken back
		if b.midFrame {
			keep = max(keep, 1)
		}
		c.dropLocked(keep)
	}
	if !o.flushing && o.queueLen() == 0 {
		n, err := writeNow(c.raw, frame)
		if err != nil || n == len(frame) {
			c.endLocked(err == nil)
			return true
		}
		frame = frame[n:]
		o.backlogLocked().midFrame = n > 0
	}
	// A peer that does not read gets closeTimeout to take the rest.
	_ = c.sc.Conn.SetWriteDeadline(time.Now().Add(closeTimeout))
	c.queueLocked(frame)
	return false
}

// endLocked ends the outbound stream. After a close frame (graceful) the
// socket is half-closed: the peer gets our FIN and closeTimeout to answer
// with its own close, and what it sends meanwhile is still read. Closing a
// socket with unread input resets the connection, and a reset can destroy
// the close frame before the peer reads it (a browser then reports 1006).
// The reader closes the socket when it ends (readerDone); without one, a
// drain does. Otherwise the socket closes now.
func (c *Client) endLocked(graceful bool) {
	o := &c.out
	o.state = outDone
	c.dropLocked(0)
	tc, ok := c.sc.Conn.(interface{ CloseWrite() error })
	if !graceful || !ok || tc.CloseWrite() != nil {
		_ = c.sc.Conn.Close()
		return
	}
	o.lingering = true
	if c.closed.Load() {
		go c.drain()
		return
	}
	_ = c.sc.Conn.SetReadDeadline(time.Now().Add(closeTimeout))
}

// drain reads and drops what a half-closed peer still sends, until it
// closes too or closeTimeout passes, then closes the socket.
func (c *Client) drain() {
	_ = c.sc.Conn.SetReadDeadline(time.Now().Add(closeTimeout))
	buf := make([]byte, 4096)
	for {
		if _, err := c.sc.Conn.Read(buf); err != nil {
			break
		}
	}
	_ = c.sc.Conn.Close()
}

// dropLocked forgets the queued frames after the first keep (never one
// the flusher is writing: see inflight).
func (c *Client) dropLocked(keep int) {
	b := c.out.b
	if b == nil {
		return
	}
	freed := 0
	for i := keep; i < len(b.q); i++ {
		freed += len(b.q[i]) + frameCost
		b.q[i] = nil
	}
	b.q = b.q[:keep]
	if keep == 0 {
		b.q = nil
		b.midFrame = false
	}
	b.bytes -= freed
	c.hub.queued.Add(int64(-freed))
	c.out.tidyLocked()
}

// flush writes the queue until it is empty, as the socket's only writer:
// others append meanwhile. Writes block; a peer that takes nothing for
// stallTimeout is cut (the keep-alive's cut-off), and a close frame waits
// at most closeTimeout.
func (c *Client) flush() {
	o := &c.out
	batch := make(net.Buffers, 0, flushBatch)
	var failed error
	o.mu.Lock()
	for o.state != outDone && o.queueLen() > 0 {
		b := o.b
		bufs := append(batch[:0], b.q[:min(len(b.q), flushBatch)]...)
		b.inflight = len(bufs)
		if o.state == outOpen {
			_ = c.sc.Conn.SetWriteDeadline(time.Now().Add(c.hub.stallTimeout()))
		}
		o.mu.Unlock()
		n, err := bufs.WriteTo(c.sc.Conn)
		o.mu.Lock()
		if o.b == b {
			b.inflight = 0
		}
		c.advanceLocked(int(n))
		if err != nil {
			failed = err
			break
		}
	}
	o.flushing = false
	closeNow := failed != nil && o.state != outDone || o.state == outClosing && o.queueLen() == 0
	stalled := failed != nil && o.state == outOpen && errors.Is(failed, os.ErrDeadlineExceeded)
	if closeNow {
		c.endLocked(failed == nil) // after the close frame, or a failure
	}
	o.mu.Unlock()
	if stalled {
		c.hub.m.SlowDropped.Inc()
		c.hub.log.Warn("websocket client took nothing for too long, disconnecting", "client", c.id, "sub", c.subject(), "after", c.hub.stallTimeout())
	}
	if closeNow {
		c.socketClosed()
	}
}

// advanceLocked forgets the first n bytes of the queue: they were written.
func (c *Client) advanceLocked(n int) {
	b := c.out.b
	if b == nil {
		return
	}
	freed := 0
	for n > 0 && len(b.q) > 0 {
		p := b.q[0]
		if n < len(p) {
			b.q[0] = p[n:]
			b.midFrame = true
			freed += n
			break
		}
		n -= len(p)
		freed += len(p) + frameCost
		b.q[0] = nil
		b.q = b.q[1:]
		b.midFrame = false
	}
	if len(b.q) == 0 {
		b.q = nil // give the array back
	}
	b.bytes -= freed
	c.hub.queued.Add(int64(-freed))
	c.out.tidyLocked()
}

// closeWith sends a close frame with code after what is queued and closes
// the connection.
func (c *Client) closeWith(code uint16, reason string) {
	c.sendClose(closeFrame(code, reason), false)
}

// abort closes the connection at once, without a close frame.
func (c *Client) abort(why string) {
	o := &c.out
	o.mu.Lock()
	if o.state == outDone {
		o.mu.Unlock()
		return
	}
	c.endLocked(false)
	o.mu.Unlock()
	c.hub.log.Debug("websocket client aborted", "client", c.id, "why", why)
	c.socketClosed()
}

// closeSocketIfOpen is gws closing the connection: a close frame it wrote
// is on its way (the writer closes the socket after it); without one, the
// socket closes now.
func (c *Client) closeSocketIfOpen() {
	c.out.mu.Lock()
	open := c.out.state == outOpen
	c.out.mu.Unlock()
	if open {
		c.abort("closed by gws")
	}
}

// readerDone is the end of reading (OnClose). The socket closes now
// unless the writer still has frames to send (a close frame after what
// is queued): then it closes once they are out, or at closeTimeout.
func (c *Client) readerDone() {
	o := &c.out
	o.mu.Lock()
	c.closed.Store(true)
	switch {
	case o.state == outOpen: // a read error: no close frame was written
		c.endLocked(false)
	case o.state == outDone && o.lingering:
		go c.drain() // the peer may still be sending (what gws did not read)
	case o.state == outDone:
		_ = c.sc.Conn.Close()
	}
	o.mu.Unlock()
}

// socketClosed makes sure a connection whose socket the server closed is
// finished (its ReadLoop ends with OnClose), even when no goroutine was
// reading it.
func (c *Client) socketClosed() { c.hub.afterClose(c) }

// queuedBytes is what waits for the client.
func (c *Client) queuedBytes() int {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	return c.out.waitingLocked()
}
