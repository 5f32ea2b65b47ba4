package hub

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/lxzan/gws"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/event"
)

// Close codes the server uses.
const (
	CloseGoingAway    = 1001 // shutdown
	ClosePolicy       = 1008 // sustained abuse of the action rate limit ("policy violation")
	CloseTooLarge     = 1009 // inbound frame over websocket.max_message_bytes (sent by gws)
	CloseReconnect    = 1012 // "service restart": reconnect with ?since= (relay interrupted)
	CloseSlowClient   = 3008 // more than websocket.queue_bytes waited for the client (as Centrifugo)
	CloseTokenExpired = 4001 // the token's exp passed without a refresh
)

// Client is one WebSocket connection. Its size is the memory of an idle
// connection: fields are packed, and what only some connections need is
// allocated when needed.
type Client struct {
	id          string
	hub         *Hub
	claims      atomic.Pointer[auth.Claims] // only Subject and Rooms are kept; refresh replaces them
	ownRoom     string
	socket      *gws.Conn
	sc          *sockConn
	raw         syscall.RawConn
	remote      string // the client's address: the request's RemoteAddr (clientaddr, behind a trusted proxy)
	connectedAt int64  // unix nanos
	index       int32  // in hub.list
	pollKey     uint32 // in the idle poller

	out      outbound      // the one way to the socket (out.go)
	reading  atomic.Bool   // a goroutine owns reading (the poller hands it over)
	closed   atomic.Bool   // OnClose ran: the hub is done with the client
	lastSeen atomic.Int64  // unix nanos of the last frame from the client
	expires  atomic.Uint32 // unix seconds of the token's exp (0: none)

	replaying atomic.Int32          // rooms with a replay in progress
	actions   int64                 // rate limiter state of the read goroutine (limits.go)
	mu        sync.Mutex            // guards rooms, replay and firstLive
	rooms     []string              // few: a slice costs less than a map
	replay    map[string][]Delivery // live frames held back while a room replays
	// firstLive is the seq of the first stored notification pushed live to
	// this client per room: a later join with since must not send it (or
	// anything after it) again.
	firstLive map[string]int64
	// replayed is the seq of the last notification a replay sent per room:
	// a row is visible to the replay's query a moment before its live push
	// arrives, so live pushes up to it are dropped.
	replayed map[string]int64
}

func newClient(h *Hub, claims *auth.Claims, socket *gws.Conn, sc *sockConn, raw syscall.RawConn) *Client {
	own := claims.OwnRoom()
	c := &Client{
		id: uuid.NewString(), hub: h, ownRoom: own,
		socket: socket, sc: sc, raw: raw, connectedAt: time.Now().UnixNano(),
		rooms: []string{own},
	}
	c.keepClaims(claims)
	c.lastSeen.Store(time.Now().UnixNano())
	return c
}

// keepClaims keeps what joins need of a token (a connection lives long)
// and when it expires.
func (c *Client) keepClaims(claims *auth.Claims) {
	c.claims.Store(&auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: claims.Subject}, Rooms: claims.Rooms})
	var exp uint32 // seconds, as in the token: good until 2106
	if claims.ExpiresAt != nil {
		exp = uint32(max(1, min(claims.ExpiresAt.Unix(), 1<<32-1)))
	}
	c.expires.Store(exp)
}

func (c *Client) subject() string { return c.claims.Load().Subject }

func (c *Client) inRoomLocked(room string) bool {
	for _, r := range c.rooms {
		if r == room {
			return true
		}
	}
	return false
}

// ID is the client id given in the welcome frame.
func (c *Client) ID() string { return c.id }

// Info describes the client.
func (c *Client) Info() ClientInfo {
	return ClientInfo{ID: c.id, Subject: c.subject(), Rooms: c.roomList(), ConnectedSince: time.Unix(0, c.connectedAt).UTC()}
}

func (c *Client) roomList() []string {
	c.mu.Lock()
	out := append([]string(nil), c.rooms...)
	c.mu.Unlock()
	sort.Strings(out)
	return out
}

// deliverRoom writes a room frame (wire bytes), or holds it back while the
// room replays.
func (c *Client) deliverRoom(room string, seq int64, wire []byte) bool {
	if seq == 0 && c.replaying.Load() == 0 {
		return c.write(wire) // not a stored notification, no replay: no bookkeeping
	}
	c.mu.Lock()
	if seq > 0 && seq <= c.replayed[room] {
		c.mu.Unlock()
		return true // the replay sent it already
	}
	if held, ok := c.replay[room]; ok {
		if !c.hold(len(wire)) { // held frames count against the budget
			c.mu.Unlock()
			return false
		}
		c.replay[room] = append(held, Delivery{Room: room, Seq: seq, Frame: wire})
		c.mu.Unlock()
		return true
	}
	if seq > 0 && c.firstLive[room] == 0 {
		if c.firstLive == nil {
			c.firstLive = make(map[string]int64, 1)
		}
		c.firstLive[room] = seq
	}
	ok := c.write(wire) // under mu: keeps order with a replay's flush
	c.mu.Unlock()
	return ok
}

func (c *Client) send(topic string, data any) {
	frame, err := event.MarshalFrame(topic, "", data)
	if err != nil {
		c.hub.log.Error("encode frame", "topic", topic, "err", err)
		return
	}
	c.write(textFrame(frame))
}

func (c *Client) sendError(e *ActionError) {
	c.send(event.TopicError, errorData{Code: e.Code, Message: e.Message, Room: e.Room})
}

// join handles {"action":"join"}; it runs on the client's read goroutine,
// so a client's actions are handled one at a time, in order.
func (c *Client) join(a Action) {
	room := a.Room
	if !c.claims.Load().MayJoin(room) {
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
	already := c.inRoomLocked(room)
	if !already && len(c.rooms) >= c.hub.opts.MaxRooms {
		c.mu.Unlock()
		c.sendError(actionErr(CodeTooManyRooms, room, "a client may be in at most %d rooms", c.hub.opts.MaxRooms))
		return
	}
	if a.Since != "" && !c.holdLocked(room) {
		c.mu.Unlock()
		c.sendError(actionErr(CodeBadRequest, room, "a replay of this room is already running"))
		return
	}
	if !already {
		c.rooms = append(c.rooms, room)
	}
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

// holdLocked starts holding back live frames of room for a replay; false
// when one is already running.
func (c *Client) holdLocked(room string) bool {
	if _, busy := c.replay[room]; busy {
		return false
	}
	if c.replay == nil {
		c.replay = make(map[string][]Delivery)
	}
	c.replay[room] = []Delivery{}
	c.replaying.Add(1)
	return true
}

// replayRoom sends the stored notifications newer than since, then the live
// frames that arrived meanwhile, skipping those the replay already held.
// Live frames are held from before the query, and seq is commit-ordered,
// so nothing falls between the two and nothing is sent twice.
func (c *Client) replayRoom(room, recipient string, since uuid.UUID) {
	var rep Replay
	err := errors.New("history is not available on this server")
	if h := c.hub.opts.History; h != nil {
		// Live frames of the room are held from before this point: what is
		// below the bound was delivered before (the client was not in the
		// room, or got it live), what is not comes live after the replay.
		below := c.hub.replayBound()
		ctx, cancel := context.WithTimeout(c.hub.ctx, 5*time.Second) // cancelled by Shutdown
		rep, err = h.ReplayAfter(ctx, recipient, since, c.hub.opts.ReplayLimit, below)
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
		var b event.FrameBuilder
		c.write(textFrame(b.Frame(r)))
		last = max(last, r.Seq)
	}
	c.mu.Lock()
	held := c.replay[room]
	c.unhold(held)
	delete(c.replay, room)
	c.replaying.Add(-1)
	if err == nil {
		if c.replayed == nil {
			c.replayed = make(map[string]int64, 1)
		}
		c.replayed[room] = last
	}
	for _, d := range held {
		if d.Seq == 0 || d.Seq > last || err != nil {
			c.write(d.Frame)
		}
	}
	c.mu.Unlock()
}

func (c *Client) leave(a Action) {
	c.mu.Lock()
	in := false
	for i, r := range c.rooms {
		if r == a.Room {
			c.rooms = append(c.rooms[:i], c.rooms[i+1:]...)
			in = true
			break
		}
	}
	delete(c.firstLive, a.Room)
	delete(c.replayed, a.Room)
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

// OnOpen does nothing: the hub opens a client before gws reads from it.
func (e *handler) OnOpen(*gws.Conn) {}

// open registers a new client and welcomes it, on a short-lived goroutine
// (the connection's own goroutine stays shallow: see idle). With since
// (the ?since= of a reconnecting client), the notifications of its own
// room stored after that one are replayed before any live one, in order.
func (h *Hub) open(c *Client, since string) {
	// The welcome promises the client id works from every instance.
	c.waitPresence(func(p Presence) <-chan struct{} { return p.Connected(c.Info()) })
	c.send(event.TopicWelcome, welcomeData{ClientID: c.id, Rooms: []string{c.ownRoom}})
	// Only now read what the client sent: the welcome is its first frame,
	// whatever it sent before it.
	h.watch(c)
	var sinceID uuid.UUID
	if since != "" {
		var err error
		if sinceID, err = uuid.Parse(since); err != nil {
			c.sendError(actionErr(CodeInvalidSince, c.ownRoom, "since must be a notification id (UUID), got %q: connected without replay", truncate(since, 64)))
			since = ""
		} else {
			c.mu.Lock()
			c.holdLocked(c.ownRoom) // live frames wait until the replay is sent
			c.mu.Unlock()
		}
	}
	h.register(c)
	if h.closing.Load() { // Shutdown began after its upgrade: its list may miss c
		c.closeWith(CloseGoingAway, "server shutting down")
	}
	if since != "" {
		c.replayRoom(c.ownRoom, c.subject(), sinceID)
	}
	if c.closed.Load() { // gone while opening: undo, so nothing is left behind
		h.unregister(c)
	}
	h.log.Debug("websocket client connected", "client", c.id, "sub", c.subject(), "remote", c.remote)
}

func (e *handler) OnClose(socket *gws.Conn, err error) {
	c := clientOf(socket)
	c.readerDone()
	e.h.poll.forget(c)
	e.h.unregister(c)
	e.h.release(c.subject())
	defer e.h.wg.Done()
	e.h.log.Debug("websocket client disconnected", "client", c.id, "reason", err)
}

func (e *handler) OnPing(socket *gws.Conn, payload []byte) {
	c := clientOf(socket)
	c.lastSeen.Store(time.Now().UnixNano())
	c.write(appendFrame(nil, opPong, payload))
}

func (e *handler) OnPong(socket *gws.Conn, _ []byte) {
	clientOf(socket).lastSeen.Store(time.Now().UnixNano())
}

func (e *handler) OnMessage(socket *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	c := clientOf(socket)
	c.lastSeen.Store(time.Now().UnixNano())
	if msg.Opcode != gws.OpcodeText {
		if c.allow(1, "") {
			c.sendError(actionErr(CodeBadRequest, "", "frames must be JSON text"))
		}
		return
	}
	a, err := DecodeAction(msg.Bytes())
	cost := 1
	if err == nil && a.Action == ActionJoin && a.Since != "" {
		cost = replayCost // a database query
	}
	if !c.allow(cost, a.Room) {
		return
	}
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
	case ActionRefresh:
		c.refresh(a)
	}
}

// refresh handles {"action":"refresh","token":…}: a valid token for the
// same subject replaces the connection's (rooms and expiry); rooms it no
// longer allows are left. Anything else changes nothing.
func (c *Client) refresh(a Action) {
	verify := c.hub.opts.Verify
	if verify == nil {
		c.sendError(actionErr(CodeUnavailable, "", "this server cannot check tokens"))
		return
	}
	claims, err := verify(a.Token)
	if err != nil {
		c.sendError(actionErr(CodeInvalidToken, "", "the token was not accepted: %v", err))
		return
	}
	if claims.Subject != c.subject() {
		c.sendError(actionErr(CodeForbidden, "", "the token is for another subject: a connection keeps its subject"))
		return
	}
	c.mu.Lock()
	var left []string
	kept := make([]string, 0, len(c.rooms))
	for _, r := range c.rooms {
		if r == c.ownRoom || claims.MayJoin(r) {
			kept = append(kept, r)
		} else {
			left = append(left, r)
			delete(c.firstLive, r)
			delete(c.replayed, r)
		}
	}
	c.rooms = kept
	c.keepClaims(claims)
	c.mu.Unlock()
	for _, r := range left {
		c.hub.removeFromRoom(r, c)
	}
	if p := c.hub.opts.Presence; p != nil && len(left) > 0 {
		p.RoomsChanged(c.Info())
	}
	for _, r := range left {
		c.send(event.TopicLeft, roomData{Room: r})
	}
	var exp *time.Time
	if claims.ExpiresAt != nil {
		t := claims.ExpiresAt.UTC()
		exp = &t
	}
	c.send(event.TopicRefreshed, refreshedData{ExpiresAt: exp})
}
