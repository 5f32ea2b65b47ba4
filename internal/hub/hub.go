package hub

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/lxzan/gws"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/metrics"
)

// Replay is what History returns for a join with since.
type Replay struct {
	Rows      []*event.Row // oldest first
	Truncated bool         // older rows than these exist but were left out
	SinceSeq  int64        // seq of the row named by since
}

// History reads stored notifications for replay.
type History interface {
	// ReplayAfter returns the recipient's rows stored after the one with id
	// since, at most limit of them (the newest). event.ErrNotFound when
	// since is not one of the recipient's notifications.
	ReplayAfter(ctx context.Context, recipient string, since uuid.UUID, limit int) (Replay, error)
}

// Presence is told when clients come, change rooms and go, so other
// instances can list and address them. Calls must not block; Connected and
// RoomsChanged return a channel closed once the change is known everywhere.
type Presence interface {
	Connected(ClientInfo) <-chan struct{}
	RoomsChanged(ClientInfo) <-chan struct{}
	Disconnected(clientID string)
}

// Options configure a Hub.
type Options struct {
	MaxMessageBytes int           // inbound frame limit (close 1009 above it)
	MaxRooms        int           // rooms per client
	QueueLimit      int           // frames waiting per client before it is dropped
	ReplayLimit     int           // rows one replay sends at most
	PingInterval    time.Duration // server pings; a client silent for 3 intervals is closed
	History         History       // nil: joins with since answer "unavailable"
	Presence        Presence      // nil: this instance only
	Metrics         *metrics.Metrics
	Logger          *slog.Logger
}

// ClientInfo describes a connected client.
type ClientInfo struct {
	ID             string    `json:"id"`
	Subject        string    `json:"subject"`
	Rooms          []string  `json:"rooms"`
	ConnectedSince time.Time `json:"connectedSince"`
	Instance       string    `json:"instance,omitempty"`
}

// Delivery is one frame for one room; Seq > 0 for stored notifications
// (used to join replay and live pushes without gap or duplicate).
type Delivery struct {
	Room  string
	Seq   int64
	Frame []byte
}

// Hub holds this process's WebSocket clients and rooms.
type Hub struct {
	opts     Options
	log      *slog.Logger
	m        *metrics.Metrics
	upgrader *gws.Upgrader

	mu      sync.RWMutex
	clients map[string]*Client
	rooms   map[string]map[*Client]struct{}

	closing   atomic.Bool
	stopPing  chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // connections still open
}

// New builds a hub; call Close (or Shutdown) to stop its keep-alive loop.
func New(o Options) *Hub {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 64 << 10
	}
	if o.MaxRooms <= 0 {
		o.MaxRooms = 100
	}
	if o.QueueLimit <= 0 {
		o.QueueLimit = 1024
	}
	if o.ReplayLimit <= 0 {
		o.ReplayLimit = 500
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	h := &Hub{
		opts: o, log: o.Logger, m: o.Metrics,
		clients:  make(map[string]*Client),
		rooms:    make(map[string]map[*Client]struct{}),
		stopPing: make(chan struct{}),
	}
	h.upgrader = gws.NewUpgrader(&handler{h: h}, &gws.ServerOption{
		ReadMaxPayloadSize: o.MaxMessageBytes,
		ReadBufferSize:     1024, // frames are small; larger ones are read straight into their own buffer
		CheckUtf8Enabled:   true,
		HandshakeTimeout:   10 * time.Second,
		NewSession:         func() gws.SessionStorage { return &session{} },
		Recovery:           gws.Recovery,
	})
	go h.keepAlive()
	return h
}

// SetPresence connects the hub to the other instances; call it before the
// first client connects.
func (h *Hub) SetPresence(p Presence) { h.opts.Presence = p }

// Upgrade turns an authenticated request into a client. The caller has
// verified claims; gws answers a request that is not a WebSocket handshake.
func (h *Hub) Upgrade(w http.ResponseWriter, r *http.Request, claims *auth.Claims) error {
	socket, err := h.upgrader.Upgrade(w, r)
	if err != nil {
		return err
	}
	c := newClient(h, claims, socket)
	socket.Session().Store(sessionKey, c)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		socket.ReadLoop()
	}()
	return nil
}

// Closing reports whether Shutdown has begun (new connections are refused).
func (h *Hub) Closing() bool { return h.closing.Load() }

// register makes c reachable: by id and in its own notification room.
func (h *Hub) register(c *Client) {
	h.mu.Lock()
	h.clients[c.id] = c
	h.addLocked(c.ownRoom, c)
	h.mu.Unlock()
	h.m.Connections.Inc()
}

func (h *Hub) unregister(c *Client) {
	rooms := c.roomList()
	h.mu.Lock()
	if h.clients[c.id] == c {
		delete(h.clients, c.id)
		h.m.Connections.Dec()
	}
	for _, r := range rooms {
		h.removeLocked(r, c)
	}
	h.mu.Unlock()
	if h.opts.Presence != nil {
		h.opts.Presence.Disconnected(c.id)
	}
}

func (h *Hub) addToRoom(room string, c *Client) {
	h.mu.Lock()
	h.addLocked(room, c)
	h.mu.Unlock()
}

func (h *Hub) removeFromRoom(room string, c *Client) {
	h.mu.Lock()
	h.removeLocked(room, c)
	h.mu.Unlock()
}

func (h *Hub) addLocked(room string, c *Client) {
	members := h.rooms[room]
	if members == nil {
		members = make(map[*Client]struct{}, 1)
		h.rooms[room] = members
	}
	members[c] = struct{}{}
}

func (h *Hub) removeLocked(room string, c *Client) {
	if members := h.rooms[room]; members != nil {
		delete(members, c)
		if len(members) == 0 {
			delete(h.rooms, room)
		}
	}
}

// Deliver queues each frame to the members of its room. It returns the
// number of frames queued.
func (h *Hub) Deliver(items []Delivery) int {
	n := 0
	h.mu.RLock()
	for i := range items {
		d := &items[i]
		for c := range h.rooms[d.Room] {
			if c.deliverRoom(d.Room, d.Seq, d.Frame) {
				n++
			}
		}
	}
	h.mu.RUnlock()
	h.m.FramesSent.Add(float64(n))
	return n
}

// SendRoom queues frame to the members of room.
func (h *Hub) SendRoom(room string, frame []byte) int {
	return h.Deliver([]Delivery{{Room: room, Frame: frame}})
}

// Broadcast queues frame to every client.
func (h *Hub) Broadcast(frame []byte) int {
	n := 0
	h.mu.RLock()
	for _, c := range h.clients {
		if c.enqueue(frame) {
			n++
		}
	}
	h.mu.RUnlock()
	h.m.FramesSent.Add(float64(n))
	return n
}

// SendClient queues frame to one client; false if it is not connected here.
func (h *Hub) SendClient(id string, frame []byte) bool {
	h.mu.RLock()
	c := h.clients[id]
	h.mu.RUnlock()
	if c == nil {
		return false
	}
	ok := c.enqueue(frame)
	if ok {
		h.m.FramesSent.Inc()
	}
	return ok
}

// HasClient reports whether a client with id is connected here.
func (h *Hub) HasClient(id string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.clients[id] != nil
}

// Clients lists this instance's clients.
func (h *Hub) Clients() []ClientInfo {
	h.mu.RLock()
	list := make([]*Client, 0, len(h.clients))
	for _, c := range h.clients {
		list = append(list, c)
	}
	h.mu.RUnlock()
	out := make([]ClientInfo, 0, len(list))
	for _, c := range list {
		out = append(out, c.Info())
	}
	return out
}

// Len is the number of connected clients.
func (h *Hub) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients)
}

func (h *Hub) snapshot() []*Client {
	h.mu.RLock()
	defer h.mu.RUnlock()
	list := make([]*Client, 0, len(h.clients))
	for _, c := range h.clients {
		list = append(list, c)
	}
	return list
}

// keepAlive pings every client each interval and closes those that have
// sent nothing (not even a pong) for three intervals: a vanished peer
// would otherwise hold its connection for ever.
func (h *Hub) keepAlive() {
	t := time.NewTicker(h.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-h.stopPing:
			return
		case now := <-t.C:
			limit := now.Add(-3 * h.opts.PingInterval).UnixNano()
			for _, c := range h.snapshot() {
				if c.lastSeen.Load() < limit {
					c.abort("idle")
					continue
				}
				c.conn.WriteAsync(gws.OpcodePing, nil, nil)
			}
		}
	}
}

// Shutdown refuses new connections and closes every client with 1001
// ("going away"), spread evenly over window so they do not all reconnect
// to the next instance at the same instant. It returns when all are gone
// or ctx ends.
func (h *Hub) Shutdown(ctx context.Context, window time.Duration) {
	h.closing.Store(true)
	h.Close()
	list := h.snapshot()
	start := time.Now()
	for i, c := range list {
		if window > 0 && len(list) > 1 {
			at := start.Add(window * time.Duration(i) / time.Duration(len(list)))
			if d := time.Until(at); d > time.Millisecond {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		go c.closeWith(1001, "server shutting down")
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range h.snapshot() {
			c.abort("shutdown deadline")
		}
	}
}

// Close stops the keep-alive loop; connections stay open (see Shutdown).
func (h *Hub) Close() {
	h.closeOnce.Do(func() { close(h.stopPing) })
}

// NotificationDeliveries encodes each stored row's created frame once, for
// its recipient's room.
func NotificationDeliveries(rows []*event.Row) ([]Delivery, error) {
	items := make([]Delivery, 0, len(rows))
	var b event.FrameBuilder
	for _, r := range rows {
		items = append(items, Delivery{Room: r.Room(), Seq: r.Seq, Frame: b.Frame(r)})
	}
	return items, nil
}
