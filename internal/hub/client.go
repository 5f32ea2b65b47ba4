package hub

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/lxzan/gws"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/event"
)

// Close codes the server uses.
const (
	CloseGoingAway  = 1001 // shutdown
	CloseSlowClient = 1008 // queue passed websocket.queue_limit ("policy violation")
	CloseTooLarge   = 1009 // inbound frame over websocket.max_message_bytes (sent by gws)
)

// Client is one WebSocket connection.
type Client struct {
	id          string
	hub         *Hub
	claims      *auth.Claims
	ownRoom     string
	conn        *gws.Conn
	connectedAt time.Time
	written     func(error) // bound once: WriteAsync callback

	pending  atomic.Int32 // frames queued, not yet written
	lastSeen atomic.Int64 // unix nanos of the last frame from the client
	closed   atomic.Bool

	replaying atomic.Int32 // rooms with a replay in progress
	mu        sync.Mutex   // guards rooms, replay and firstLive
	rooms     map[string]struct{}
	replay    map[string][]Delivery // live frames held back while a room replays
	// firstLive is the seq of the first stored notification pushed live to
	// this client per room: a later join with since must not send it (or
	// anything after it) again.
	firstLive map[string]int64
}

func newClient(h *Hub, claims *auth.Claims, conn *gws.Conn) *Client {
	c := &Client{
		id: uuid.NewString(), hub: h, claims: claims, ownRoom: claims.OwnRoom(),
		conn: conn, connectedAt: time.Now().UTC(),
		rooms: map[string]struct{}{claims.OwnRoom(): {}},
	}
	c.written = func(error) { c.pending.Add(-1) }
	c.lastSeen.Store(time.Now().UnixNano())
	return c
}

// ID is the client id given in the welcome frame.
func (c *Client) ID() string { return c.id }

// Info describes the client.
func (c *Client) Info() ClientInfo {
	return ClientInfo{ID: c.id, Subject: c.claims.Subject, Rooms: c.roomList(), ConnectedSince: c.connectedAt}
}

func (c *Client) roomList() []string {
	c.mu.Lock()
	out := make([]string, 0, len(c.rooms))
	for r := range c.rooms {
		out = append(out, r)
	}
	c.mu.Unlock()
	sort.Strings(out)
	return out
}

// enqueue queues a frame without blocking. A client whose queue is full is
// not keeping up: it is disconnected rather than allowed to grow memory or
// hold up the sender.
func (c *Client) enqueue(frame []byte) bool {
	if c.closed.Load() {
		c.hub.m.FramesDropped.Inc()
		return false
	}
	if int(c.pending.Add(1)) > c.hub.opts.QueueLimit {
		c.pending.Add(-1)
		c.dropSlow()
		return false
	}
	c.conn.WriteAsync(gws.OpcodeText, frame, c.written)
	return true
}

// deliverRoom queues a room frame, or holds it back while the room replays.
func (c *Client) deliverRoom(room string, seq int64, frame []byte) bool {
	if seq == 0 && c.replaying.Load() == 0 {
		return c.enqueue(frame) // not a stored notification, no replay: no bookkeeping
	}
	c.mu.Lock()
	if held, ok := c.replay[room]; ok {
		if len(held) >= c.hub.opts.QueueLimit {
			c.mu.Unlock()
			c.dropSlow()
			return false
		}
		c.replay[room] = append(held, Delivery{Room: room, Seq: seq, Frame: frame})
		c.mu.Unlock()
		return true
	}
	if seq > 0 && c.firstLive[room] == 0 {
		if c.firstLive == nil {
			c.firstLive = make(map[string]int64, 1)
		}
		c.firstLive[room] = seq
	}
	ok := c.enqueue(frame) // under mu: keeps order with a replay's flush
	c.mu.Unlock()
	return ok
}

func (c *Client) send(topic string, data any) {
	frame, err := event.MarshalFrame(topic, "", data)
	if err != nil {
		c.hub.log.Error("encode frame", "topic", topic, "err", err)
		return
	}
	c.enqueue(frame)
}

func (c *Client) sendError(e *ActionError) {
	c.send(event.TopicError, errorData{Code: e.Code, Message: e.Message, Room: e.Room})
}

func (c *Client) dropSlow() {
	if c.closed.CompareAndSwap(false, true) {
		c.hub.m.SlowDropped.Inc()
		c.hub.log.Warn("websocket client too slow, disconnecting", "client", c.id, "sub", c.claims.Subject, "queue_limit", c.hub.opts.QueueLimit)
		go c.forceClose(CloseSlowClient, "slow client: queue limit reached")
	}
}

// closeWith sends a close frame and closes the connection. A write stuck on
// a peer that does not read is cut after a second.
func (c *Client) closeWith(code uint16, reason string) {
	c.closed.Store(true)
	c.forceClose(code, reason)
}

func (c *Client) forceClose(code uint16, reason string) {
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.conn.WriteClose(code, []byte(reason))
	_ = c.conn.NetConn().Close()
}

// abort closes the connection without a close frame.
func (c *Client) abort(why string) {
	c.closed.Store(true)
	c.hub.log.Debug("websocket client aborted", "client", c.id, "why", why)
	_ = c.conn.NetConn().Close()
}

// join handles {"action":"join"}; it runs on the client's read goroutine,
// so a client's actions are handled one at a time, in order.
func (c *Client) join(a Action) {
	room := a.Room
	if !c.claims.MayJoin(room) {
		c.sendError(actionErr(CodeForbidden, room, "this token may not join %q", room))
		return
	}
	var recipient string
	var since uuid.UUID
	if a.Since != "" {
		var ok bool
		if recipient, ok = event.RecipientOfRoom(room); !ok {
			c.sendError(actionErr(CodeBadRequest, room, "since is only for notification rooms (%s…)", event.NotificationRoomPrefix))
			return
		}
		var err error
		if since, err = uuid.Parse(a.Since); err != nil {
			c.sendError(actionErr(CodeInvalidSince, room, "since must be a notification id (UUID), got %q", truncate(a.Since, 64)))
			return
		}
	}

	c.mu.Lock()
	_, already := c.rooms[room]
	if !already && len(c.rooms) >= c.hub.opts.MaxRooms {
		c.mu.Unlock()
		c.sendError(actionErr(CodeTooManyRooms, room, "a client may be in at most %d rooms", c.hub.opts.MaxRooms))
		return
	}
	if a.Since != "" {
		if _, busy := c.replay[room]; busy {
			c.mu.Unlock()
			c.sendError(actionErr(CodeBadRequest, room, "a replay of this room is already running"))
			return
		}
		if c.replay == nil {
			c.replay = make(map[string][]Delivery)
		}
		c.replay[room] = []Delivery{}
		c.replaying.Add(1)
	}
	c.rooms[room] = struct{}{}
	c.mu.Unlock()
	if !already {
		c.hub.addToRoom(room, c)
		// "joined" promises that pushes from every instance reach the room.
		c.waitPresence(func(p Presence) <-chan struct{} { return p.RoomsChanged(c.Info()) })
	}
	if a.Since == "" {
		c.send(event.TopicJoined, roomData{Room: room})
		return
	}
	c.replayRoom(room, recipient, since)
}

// replayRoom sends the stored notifications newer than since, then the live
// frames that arrived meanwhile, skipping those the replay already held.
// Live frames are held from before the query, and seq is commit-ordered,
// so nothing falls between the two and nothing is sent twice.
func (c *Client) replayRoom(room, recipient string, since uuid.UUID) {
	var rep Replay
	err := errors.New("history is not available on this server")
	if h := c.hub.opts.History; h != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rep, err = h.ReplayAfter(ctx, recipient, since, c.hub.opts.ReplayLimit)
		cancel()
	}
	// Rows pushed live before this join (the client was already in the
	// room, e.g. its own) are not sent again.
	c.mu.Lock()
	firstLive := c.firstLive[room]
	c.mu.Unlock()
	rows := rep.Rows
	if firstLive > 0 {
		n := 0
		for _, r := range rows {
			if r.Seq < firstLive {
				rows[n] = r
				n++
			}
		}
		rows = rows[:n]
	}
	replayed := len(rows)
	c.send(event.TopicJoined, roomData{Room: room, Replayed: &replayed})
	switch {
	case errors.Is(err, event.ErrNotFound):
		c.sendError(actionErr(CodeUnknownSince, room, "notification %s is not in this room: joined without replay", since))
	case err != nil:
		c.hub.log.Warn("replay failed", "client", c.id, "room", room, "err", err)
		c.sendError(actionErr(CodeUnavailable, room, "stored notifications cannot be read now: joined without replay"))
	case rep.Truncated:
		c.sendError(actionErr(CodeReplayTruncated, room, "more than %d notifications since %s: the oldest were left out, fetch them from GET /notifications", c.hub.opts.ReplayLimit, since))
	}
	last := max(rep.SinceSeq, firstLive)
	for _, r := range rows {
		frame, ferr := event.MarshalFrame(event.TopicNotificationCreated, room, r.Payload())
		if ferr == nil {
			c.enqueue(frame)
		}
		last = max(last, r.Seq)
	}
	c.mu.Lock()
	held := c.replay[room]
	delete(c.replay, room)
	c.replaying.Add(-1)
	for _, d := range held {
		if d.Seq == 0 || d.Seq > last || err != nil {
			c.enqueue(d.Frame)
		}
	}
	c.mu.Unlock()
}

func (c *Client) leave(a Action) {
	c.mu.Lock()
	_, in := c.rooms[a.Room]
	delete(c.rooms, a.Room)
	delete(c.firstLive, a.Room)
	c.mu.Unlock()
	if !in {
		c.sendError(actionErr(CodeNotJoined, a.Room, "not in room %q", a.Room))
		return
	}
	c.hub.removeFromRoom(a.Room, c)
	if p := c.hub.opts.Presence; p != nil {
		p.RoomsChanged(c.Info()) // no need to wait: a stray frame after leaving is dropped nowhere
	}
	c.send(event.TopicLeft, roomData{Room: a.Room})
}

// handler adapts gws events to the client.
type handler struct {
	h *Hub
}

const sessionKey = "c"

// session is the smallest gws.SessionStorage: it only holds the client.
type session struct{ c *Client }

func (s *session) Len() int { return 1 }
func (s *session) Load(string) (any, bool) {
	return s.c, s.c != nil
}
func (s *session) Delete(string)                  { s.c = nil }
func (s *session) Store(_ string, v any)          { s.c, _ = v.(*Client) }
func (s *session) Range(f func(string, any) bool) { f(sessionKey, s.c) }

func clientOf(socket *gws.Conn) *Client {
	return socket.Session().(*session).c
}

// presenceWait bounds how long a client waits for a presence change to be
// known to the other instances before its reply; past it (the database is
// away) it is served by this instance meanwhile.
const presenceWait = 2 * time.Second

func (c *Client) waitPresence(change func(Presence) <-chan struct{}) {
	p := c.hub.opts.Presence
	if p == nil {
		return
	}
	select {
	case <-change(p):
	case <-time.After(presenceWait):
		c.hub.log.Warn("presence not yet known to the other instances", "client", c.id)
	}
}

func (e *handler) OnOpen(socket *gws.Conn) {
	c := clientOf(socket)
	// The welcome promises the client id works from every instance.
	c.waitPresence(func(p Presence) <-chan struct{} { return p.Connected(c.Info()) })
	c.send(event.TopicWelcome, welcomeData{ClientID: c.id, Rooms: []string{c.ownRoom}})
	e.h.register(c)
	e.h.log.Debug("websocket client connected", "client", c.id, "sub", c.claims.Subject, "remote", socket.RemoteAddr().String())
}

func (e *handler) OnClose(socket *gws.Conn, err error) {
	c := clientOf(socket)
	c.closed.Store(true)
	e.h.unregister(c)
	e.h.log.Debug("websocket client disconnected", "client", c.id, "reason", err)
}

func (e *handler) OnPing(socket *gws.Conn, payload []byte) {
	clientOf(socket).lastSeen.Store(time.Now().UnixNano())
	socket.WriteAsync(gws.OpcodePong, payload, nil)
}

func (e *handler) OnPong(socket *gws.Conn, _ []byte) {
	clientOf(socket).lastSeen.Store(time.Now().UnixNano())
}

func (e *handler) OnMessage(socket *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	c := clientOf(socket)
	c.lastSeen.Store(time.Now().UnixNano())
	if msg.Opcode != gws.OpcodeText {
		c.sendError(actionErr(CodeBadRequest, "", "frames must be JSON text"))
		return
	}
	a, err := DecodeAction(msg.Bytes())
	if err != nil {
		var ae *ActionError
		if errors.As(err, &ae) {
			c.sendError(ae)
		}
		return
	}
	switch a.Action {
	case ActionJoin:
		c.join(a)
	case ActionLeave:
		c.leave(a)
	case ActionPing:
		c.send(event.TopicPong, struct{}{})
	}
}
