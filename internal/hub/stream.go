package hub

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/stream"
)

// Streams is what the hub needs of the sync stream (internal/stream):
// where each stream stands, the catch-ups that read it back, and the
// periodic check that nothing was missed. nil (Options.Streams): frames
// are sent as they come, without positions kept.
type Streams struct {
	// Heads reads heads after a client's registration is known everywhere
	// (locked: see store.Heads).
	Heads *stream.Heads
	// Catchups reads changes back from the database.
	Catchups *stream.Catchups
	// PositionOf resolves a since that names a notification by its id.
	PositionOf func(ctx context.Context, recipient string, id uuid.UUID) (int64, error)
	// Peek reads heads without a lock, for the periodic check.
	Peek func(ctx context.Context, recipients []string) (map[string]int64, error)
	// CheckEvery is how often every live stream is compared with its head
	// (0: never).
	CheckEvery time.Duration
}

// cursorLocked returns the client's cursor of a notification room it is
// in, nil for other rooms (c.mu held).
func (c *Client) cursorLocked(room string) *stream.Cursor {
	if room == c.ownRoom {
		return c.own
	}
	return c.streams[room]
}

// restartCursorLocked gives the client a fresh cursor for a notification
// room it joins, or joins again (c.mu held). The one it replaces stops: a
// start or a catch-up of it ends at its next step, writing nothing more.
func (c *Client) restartCursorLocked(room string) *stream.Cursor {
	if old := c.cursorLocked(room); old != nil {
		old.Stop()
	}
	cur := &stream.Cursor{}
	if room == c.ownRoom {
		c.own = cur
		return cur
	}
	if c.streams == nil {
		c.streams = map[string]*stream.Cursor{}
	}
	c.streams[room] = cur
	return cur
}

// dropCursorLocked stops and forgets the cursor of a room the client left
// (c.mu held): a catch-up of it ends.
func (c *Client) dropCursorLocked(room string) {
	if cur := c.cursorLocked(room); cur != nil {
		cur.Stop()
	}
	if room == c.ownRoom {
		c.own = nil
	}
	delete(c.streams, room)
}

// deliverStream writes a live frame of a stream, in order, or drops it
// when it was sent or a catch-up will send it; a skipped position starts
// a catch-up.
func (c *Client) deliverStream(room string, pos int64, wire []byte) bool {
	c.mu.Lock()
	cur := c.cursorLocked(room)
	if cur == nil { // not a stream this client follows
		ok := c.write(wire)
		c.mu.Unlock()
		return ok
	}
	switch cur.Offer(pos) {
	case stream.Send:
		ok := c.write(wire) // under mu: the order of writes is the order of positions
		c.mu.Unlock()
		return ok
	case stream.Repair:
		c.mu.Unlock()
		c.hub.m.StreamRepairs.WithLabelValues("gap").Inc()
		// Ends with synced: the changes read from the database carry no
		// counts (notifications do not), the synced does.
		c.hub.catchUp(c, room, cur, true, false)
		return true
	}
	c.mu.Unlock()
	return true
}

// catchUp runs a catch-up of the client's stream in room on a goroutine
// of its own (the cursor is catching); none once Shutdown began, which
// closes the client.
func (h *Hub) catchUp(c *Client, room string, cur *stream.Cursor, synced, resume bool) {
	recipient, _ := event.RecipientOfRoom(room)
	h.goTask("stream catch-up", func() {
		h.opts.Streams.Catchups.Run(h.ctx, stream.Job{Conn: streamConn{c}, Cursor: cur, Recipient: recipient,
			Room: room, Synced: synced, Resume: resume})
	})
}

// startWait bounds how long starting a stream waits for the database on
// the caller's goroutine (a join runs on the client's read goroutine); past
// it the start goes on in the background.
const startWait = 5 * time.Second

// startStream starts the client's stream of a notification room it just
// entered (registered everywhere, so its head read covers what no live
// frame will bring): from the head, or from since (a position or a
// notification id), catching up first. It runs on the caller's goroutine
// until the stream is live or its catch-up started — or, when the database
// does not answer, answers unavailable and starts it in the background
// once the database answers (the stream's frames are dropped meanwhile:
// nothing can commit without the database).
func (c *Client) startStream(room, since string, replyJoined bool) {
	c.finishStart(c.prepareStart(room, since), replyJoined)
}

// streamStart is a stream's start read from the database, to be applied.
type streamStart struct {
	room, since string
	cur         *stream.Cursor // the cursor it starts (a join again replaces it)
	head        event.StreamHead
	from        int64
	reason      string       // a reset's, or ""
	invalid     *ActionError // since was not a resume point (sent before the reset)
	ok          bool         // read; false: the database did not answer in time
}

// prepareStart reads what a start needs — the head, the resume point —
// waiting at most startWait.
func (c *Client) prepareStart(room, since string) streamStart {
	ctx, cancel := context.WithTimeout(c.hub.ctx, startWait)
	defer cancel()
	c.mu.Lock()
	st := streamStart{room: room, since: since, cur: c.cursorLocked(room)}
	c.mu.Unlock()
	st.ok = c.readStart(ctx, &st)
	return st
}

// finishStart applies a prepared start, or, when it could not be read,
// answers unavailable and starts the stream in the background.
func (c *Client) finishStart(st streamStart, replyJoined bool) {
	h := c.hub
	if st.ok {
		c.applyStart(st, replyJoined)
		return
	}
	if h.ctx.Err() != nil || c.closed.Load() {
		return
	}
	if replyJoined {
		c.send(event.TopicJoined, roomData{Room: st.room})
	}
	c.sendError(actionErr(CodeUnavailable, st.room, "stored notifications cannot be read now: the stream starts when they can"))
	h.goTask("stream start", func() {
		if c.readStart(h.ctx, &st) {
			c.applyStart(st, false)
		}
	})
}

// readStart reads the stream's head and resolves since, trying again while
// the database does not answer; false when ctx ended first.
func (c *Client) readStart(ctx context.Context, st *streamStart) bool {
	h := c.hub
	recipient, _ := event.RecipientOfRoom(st.room)
	head, err := retry(ctx, c, func(ctx context.Context) (event.StreamHead, error) { return h.opts.Streams.Heads.Get(ctx, recipient) })
	if err != nil {
		return false
	}
	st.head, st.from, st.reason = head, 0, ""
	if st.since == "" {
		return true
	}
	if st.from, st.reason, st.invalid, err = c.resumePoint(ctx, recipient, st.since); err != nil {
		return false
	}
	if st.reason == "" {
		switch limit := h.opts.Streams.Catchups.MaxBehind; {
		case st.from > head.Pos:
			st.reason = event.ResetAhead
		case st.from >= head.Floor && head.Pos-st.from > limit:
			st.reason = event.ResetExpired
		}
	}
	return true
}

// applyStart starts the cursor of a read start: live from the head (or a
// reset), or catching up from the resume point.
func (c *Client) applyStart(st streamStart, replyJoined bool) {
	h := c.hub
	room, head := st.room, st.head
	c.mu.Lock()
	cur := st.cur
	if cur == nil || cur != c.cursorLocked(room) || cur.Stopped() || cur.Live() || cur.Catching() {
		c.mu.Unlock()
		return // left or joined again meanwhile, or started already
	}
	if st.since == "" || st.reason != "" {
		catchUp := cur.Start(head.Pos, head.Floor, false)
		if st.invalid != nil {
			c.sendError(st.invalid)
		}
		if replyJoined {
			c.send(event.TopicJoined, roomData{Room: room})
		}
		if st.reason != "" {
			h.m.StreamResets.WithLabelValues(st.reason).Inc()
			c.write(textFrame(stream.ResetFrame(room, head, st.reason)))
		} else {
			c.write(textFrame(stream.SyncedFrame(room, head)))
		}
		c.mu.Unlock()
		if catchUp { // a live frame came while the head was read
			h.catchUp(c, room, cur, true, false)
		}
		return
	}
	cur.Start(st.from, head.Floor, true)
	jd := roomData{Room: room}
	if st.from >= head.Floor && st.from <= head.Pos {
		n := int(head.Pos - st.from)
		jd.Replayed = &n
	}
	c.send(event.TopicJoined, jd)
	c.mu.Unlock()
	h.m.StreamCatchups.Inc()
	h.catchUp(c, room, cur, true, true)
}

// retry calls f until it succeeds, ctx ends or the client is gone, waiting
// longer each time (the database is away).
func retry[T any](ctx context.Context, c *Client, f func(context.Context) (T, error)) (T, error) {
	wait := 100 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := f(actx)
		cancel()
		if err == nil || errors.Is(err, event.ErrNotFound) {
			return v, err
		}
		if ctx.Err() != nil || c.closed.Load() {
			return v, errors.New("gave up: " + err.Error())
		}
		c.hub.log.Debug("stream start cannot read the database, retrying", "client", c.id, "err", err, "wait", wait.String())
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// resumePoint turns since (a position, or a notification id) into a
// position, or says why the stream cannot resume from it (with, for a since
// that is neither, the error to answer). An error: ctx ended first.
func (c *Client) resumePoint(ctx context.Context, recipient, since string) (int64, string, *ActionError, error) {
	if pos, err := strconv.ParseInt(since, 10, 64); err == nil && pos >= 0 {
		return pos, "", nil, nil
	}
	id, err := uuid.Parse(since)
	if err != nil {
		return 0, event.ResetUnknown, actionErr(CodeInvalidSince, event.NotificationRoom(recipient),
			"since must be a position or a notification id, got %q: reset to the current position", truncate(since, 64)), nil
	}
	pos, err := retry(ctx, c, func(ctx context.Context) (int64, error) { return c.hub.opts.Streams.PositionOf(ctx, recipient, id) })
	switch {
	case errors.Is(err, event.ErrNotFound):
		return 0, event.ResetUnknown, nil, nil
	case err != nil:
		return 0, "", nil, err
	}
	return pos, "", nil, nil
}

// streamConn is a client as a catch-up sees it.
type streamConn struct{ c *Client }

func (s streamConn) Lock()                   { s.c.mu.Lock() }
func (s streamConn) Unlock()                 { s.c.mu.Unlock() }
func (s streamConn) Write(frame []byte) bool { return s.c.write(textFrame(frame)) }
func (s streamConn) Subject() string         { return s.c.subject() }

// WaitRoom waits until n more bytes fit in half the client's budget (or
// its queue is empty, for a frame larger than that).
func (s streamConn) WaitRoom(ctx context.Context, n int) error {
	c := s.c
	limit := max(c.hub.opts.QueueBytes/2-n, 0)
	for i := 0; ; i++ {
		if c.closed.Load() || c.outClosed() {
			return errors.New("connection closed")
		}
		if c.queuedBytes() <= limit {
			return nil
		}
		t := time.NewTimer(time.Duration(min(i+1, 10)) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Resync compares every live stream of this hub with its head and catches
// up those behind (a reset for those ahead: the database lost changes).
// The relay calls it, with locked reads, when pushes may have been lost
// without a later change to reveal it (its listener was cut); the periodic
// check calls it with Peek.
func (h *Hub) Resync(ctx context.Context, locked bool) error {
	if h.opts.Streams == nil {
		return nil
	}
	type entry struct {
		c    *Client
		room string
		cur  *stream.Cursor
	}
	byRecipient := map[string][]entry{}
	for _, c := range h.snapshot() {
		c.mu.Lock()
		if c.own != nil {
			byRecipient[c.subject()] = append(byRecipient[c.subject()], entry{c, c.ownRoom, c.own})
		}
		for room, cur := range c.streams {
			r, _ := event.RecipientOfRoom(room)
			byRecipient[r] = append(byRecipient[r], entry{c, room, cur})
		}
		c.mu.Unlock()
	}
	recipients := make([]string, 0, len(byRecipient))
	for r := range byRecipient {
		recipients = append(recipients, r)
	}
	heads := map[string]int64{}
	for len(recipients) > 0 {
		batch := recipients[:min(len(recipients), 5000)]
		recipients = recipients[len(batch):]
		if locked {
			hs, err := h.opts.Streams.Heads.Read(ctx, batch)
			if err != nil {
				return err
			}
			for r, hd := range hs {
				heads[r] = hd.Pos
			}
			continue
		}
		hs, err := h.opts.Streams.Peek(ctx, batch)
		if err != nil {
			return err
		}
		for r, p := range hs {
			heads[r] = p
		}
	}
	behind := 0
	for r, entries := range byRecipient {
		head := heads[r]
		for _, e := range entries {
			e.c.mu.Lock()
			start := e.cur.Live() && e.cur.Pos() != head && e.cur.StartCatchup()
			e.c.mu.Unlock()
			if start {
				// Behind: catch up. Ahead: the catch-up's first read finds
				// the cursor beyond the head and resets the stream.
				behind++
				h.m.StreamRepairs.WithLabelValues("check").Inc()
				h.catchUp(e.c, e.room, e.cur, true, false)
			}
		}
	}
	if behind > 0 {
		h.log.Info("streams behind their head were caught up from the database", "streams", behind, "locked", locked)
	}
	return nil
}

// checkLoop runs Resync without locks every CheckEvery.
func (h *Hub) checkLoop() {
	t := time.NewTicker(h.opts.Streams.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.stopPing:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(h.ctx, time.Minute)
			if err := h.Resync(ctx, false); err != nil && h.ctx.Err() == nil {
				h.log.Warn("periodic stream check failed", "err", err)
			}
			cancel()
		}
	}
}

// outClosed reports whether the connection takes no more frames.
func (c *Client) outClosed() bool {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	return c.out.state != outOpen
}
