package stream

// state is where a Cursor is in its life.
type state uint8

const (
	// pending: the stream's head is being read; live frames are dropped
	// (and remembered in seen).
	pending state = iota
	// live: live frames are sent in order.
	live
	// catching: a catch-up reads the database; live frames are dropped
	// (and remembered in seen).
	catching
	// stopped: the client left the room.
	stopped
)

// Verdict is what to do with a live frame.
type Verdict uint8

// Verdicts of Offer.
const (
	// Drop the frame: it was sent already, or a catch-up will send it.
	Drop Verdict = iota
	// Send the frame now: it is the next position (the cursor moved).
	Send
	// Repair: a position was skipped. Drop the frame and start a catch-up
	// (the cursor is catching now).
	Repair
)

// Cursor is one stream's state on one connection. It is not safe for
// concurrent use: the connection's lock guards it, the same lock under
// which the stream's frames are written, so that the order of writes is
// the order of positions.
type Cursor struct {
	pos   int64 // the last position sent
	floor int64 // positions up to it are not dense (stored before migration 0009)
	seen  int64 // the highest position dropped while not live
	state state
}

// Offer decides what to do with a live frame of the stream at pos.
func (c *Cursor) Offer(pos int64) Verdict {
	switch c.state {
	case stopped:
		return Drop
	case pending, catching:
		c.seen = max(c.seen, pos)
		return Drop
	}
	switch {
	case pos <= c.pos:
		return Drop
	case pos == c.pos+1:
		c.pos = pos
		return Send
	}
	c.state, c.seen = catching, pos
	return Repair
}

// Pos is the last position sent.
func (c *Cursor) Pos() int64 { return c.pos }

// Live reports whether live frames are sent as they come.
func (c *Cursor) Live() bool { return c.state == live }

// Start begins the stream at pos (the head, or the client's resume point)
// with the stream's floor, catching up to what was dropped meanwhile when
// catchUp is set or a live frame came since the cursor was made. It
// reports whether a catch-up must run.
func (c *Cursor) Start(pos, floor int64, catchUp bool) bool {
	if c.state == stopped {
		return false
	}
	c.pos, c.floor = pos, floor
	if catchUp || c.seen > pos {
		c.state = catching
		return true
	}
	c.state = live
	return false
}

// Catching reports whether a catch-up owns the cursor.
func (c *Cursor) Catching() bool { return c.state == catching }

// StartCatchup moves a live cursor to catching (a check found the stream
// behind); false when it is not live (pending, or a catch-up runs).
func (c *Cursor) StartCatchup() bool {
	if c.state != live {
		return false
	}
	c.state = catching
	return true
}

// accept is a catch-up's decision for a change at pos read from the
// database: take it (it is next), skip it (sent already), or refuse it
// (a hole: the change before it is gone).
func (c *Cursor) accept(pos int64) (take, hole bool) {
	switch {
	case pos <= c.pos:
		return false, false
	case pos == c.pos+1, pos <= c.floor, c.pos < c.floor && pos == c.floor+1:
		// Next; or, below the floor, anything later (those positions are
		// not dense); or the first dense one after them.
		c.pos = pos
		return true, false
	}
	return false, true
}

// finish ends a catch-up that read everything up to head: the cursor is at
// head, and goes live unless a live frame beyond it was dropped meanwhile.
// It reports whether the stream is live.
func (c *Cursor) finish(head int64) bool {
	c.pos = max(c.pos, head)
	if c.seen > c.pos {
		return false
	}
	c.state = live
	return true
}

// reset moves the cursor to head after a reset.
func (c *Cursor) reset(head, floor int64) {
	c.pos, c.floor = head, floor
}

// Stop ends the cursor for good (the client left the room): frames are
// dropped, and a catch-up that owns it ends at its next step.
func (c *Cursor) Stop() { c.state = stopped }

// Stopped reports whether Stop was called.
func (c *Cursor) Stopped() bool { return c.state == stopped }
