package hub

import (
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
	"github.com/signal-notify/signal/internal/stream"
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

	actions int64      // rate limiter state of the read goroutine (limits.go)
	mu      sync.Mutex // guards rooms and the cursors, and orders the writes of stream frames
	rooms   []string   // few: a slice costs less than a map
	// own is the cursor of the client's own notification room (nil once
	// it left it); streams those of other notification rooms it joined.
	// A stream's frames are written under mu, in the order of positions
	// (internal/stream).
	own     *stream.Cursor
	streams map[string]*stream.Cursor
}

func newClient(h *Hub, claims *auth.Claims, socket *gws.Conn, sc *sockConn, raw syscall.RawConn) *Client {
	own := claims.OwnRoom()
	c := &Client{
		id: uuid.NewString(), hub: h, ownRoom: own,
		socket: socket, sc: sc, raw: raw, connectedAt: time.Now().UnixNano(),
		rooms: []string{own}, own: &stream.Cursor{},
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

// deliverRoom writes a room frame (wire bytes); a frame of a stream goes
// through the stream's cursor.
func (c *Client) deliverRoom(room string, pos int64, wire []byte) bool {
	if pos == 0 || c.hub.opts.Streams == nil {
		return c.write(wire)
	}
	return c.deliverStream(room, pos, wire)
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
// so a client's actions are handled one at a time, in order. A
// notification room's stream starts (or, joined again, starts over from
// since) here; its catch-up runs on a goroutine of its own.
func (c *Client) join(a Action) {
	room := a.Room
	if !c.claims.Load().MayJoin(room) {
		c.sendError(actionErr(CodeForbidden, room, "this token may not join %q", room))
		return
	}
	_, isStream := event.RecipientOfRoom(room)
	if a.Since != "" && !isStream {
		c.sendError(actionErr(CodeBadRequest, room, "since is only for notification rooms (%s…)", event.NotificationRoomPrefix))
		return
	}
	streams := isStream && c.hub.opts.Streams != nil
	c.mu.Lock()
	already := c.inRoomLocked(room)
	if !already && len(c.rooms) >= c.hub.opts.MaxRooms {
		c.mu.Unlock()
		c.sendError(actionErr(CodeTooManyRooms, room, "a client may be in at most %d rooms", c.hub.opts.MaxRooms))
		return
	}
	if streams {
		// A fresh cursor: the stream starts over at the joined reply, and
		// whatever ran on the old one (its start, a catch-up) ends at its
		// next step.
		c.restartCursorLocked(room)
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
	if !streams {
		c.send(event.TopicJoined, roomData{Room: room})
		return
	}
	c.startStream(room, string(a.Since), true)
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
	c.dropCursorLocked(a.Room)
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
// (the connection's own goroutine stays shallow: see idle), then starts
// the stream of its own room: from since (the ?since= of a reconnecting
// client), catching up first, or from the head.
func (h *Hub) open(c *Client, since string) {
	// The welcome promises the client id works from every instance.
	c.waitPresence(func(p Presence) <-chan struct{} { return p.Connected(c.Info()) })
	h.register(c)
	if h.closing.Load() { // Shutdown began after its upgrade: its list may miss c
		c.closeWith(CloseGoingAway, "server shutting down")
	}
	if c.closed.Load() { // gone while opening: undo, so nothing is left behind
		h.unregister(c)
		return
	}
	// Its own room's stream starts at a head read after its registration
	// (in this hub and everywhere), and before the welcome: a notification
	// committed after the welcome is beyond that head, so it is pushed.
	var st streamStart
	if h.opts.Streams != nil {
		st = c.prepareStart(c.ownRoom, since)
	}
	c.send(event.TopicWelcome, welcomeData{ClientID: c.id, Rooms: []string{c.ownRoom}})
	if h.opts.Streams != nil {
		c.finishStart(st, since != "")
	}
	// Only now read what the client sent: the welcome (and its stream's
	// start) come first, whatever it sent before, and no join can race
	// with the start of its own room.
	h.watch(c)
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
			c.dropCursorLocked(r)
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
