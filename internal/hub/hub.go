package hub

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/metrics"
)

// Presence is told when clients come, change rooms and go, so other
// instances can list and address them. Calls must not block; Connected and
// RoomsChanged return a channel closed once the change is known everywhere.
type Presence interface {
	Connected(ClientInfo) <-chan struct{}
	RoomsChanged(ClientInfo) <-chan struct{}
	Disconnected(clientID string)
}

// Options configure a Hub. Zero values take the defaults of the
// websocket.* configuration keys.
type Options struct {
	MaxMessageBytes int           // inbound frame limit (close 1009 above it)
	MaxRooms        int           // rooms per client
	QueueBytes      int           // bytes waiting per client before it is closed (3008)
	PingInterval    time.Duration // server pings; a client silent (or taking nothing) for 3 intervals is closed
	// MaxConnections bounds this instance's connections (503 past it); 0:
	// the open-file limit minus fdReserve.
	MaxConnections           int
	MaxConnectionsPerSubject int     // 429 past it; 0: no limit
	UpgradeRate              float64 // upgrades per second per source address; 0: no limit
	UpgradeBurst             int
	ActionRate               float64 // actions per second per client; 0: no limit
	ActionBurst              int
	// Verify checks the token of a refresh action (nil: refresh answers
	// unavailable).
	Verify func(token string) (*auth.Claims, error)
	// Streams keeps the sync stream of each notification room (nil: frames
	// are sent as they come).
	Streams  *Streams
	Presence Presence // nil: this instance only
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
}

// fdReserve is what the default websocket.max_connections leaves of the
// open-file limit for everything else (database, Kafka, REST callers).
const fdReserve = 1024

// ClientInfo describes a connected client.
type ClientInfo struct {
	ID             string    `json:"id"`
	Subject        string    `json:"subject"`
	Rooms          []string  `json:"rooms"`
	ConnectedSince time.Time `json:"connectedSince"`
	Instance       string    `json:"instance,omitempty"`
}

// Delivery is one frame for one room; Pos > 0 for a change of the room's
// recipient's stream, at that position.
type Delivery = event.Push

// Hub holds this process's WebSocket clients and rooms.
type Hub struct {
	opts     Options
	log      *slog.Logger
	m        *metrics.Metrics
	upgrader *gws.Upgrader

	mu      sync.RWMutex
	clients map[string]*Client
	list    []*Client // the same clients, in connection order, for broadcasts
	rooms   map[string]*members

	admit  admission
	queued atomic.Int64 // bytes waiting in every client's queue (for the metric)

	closing atomic.Bool
	// admitMu orders a connection's wg.Add before Shutdown's wg.Wait: after
	// closing is set, upgrades are refused.
	admitMu   sync.Mutex
	poll      *poller // idle connections, on platforms that have one
	stopPing  chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // connections still open
	// tasks are the goroutines of streams (starts, catch-ups, the periodic
	// check); none starts after Shutdown began (goTask).
	tasks  sync.WaitGroup
	taskMu sync.Mutex
	// ctx ends with Shutdown: catch-ups in progress stop.
	ctx    context.Context
	cancel context.CancelFunc
	// beforeWatch, set by tests only, runs in watch between its check and
	// the poller's add: a test closes the connection there, the race the
	// compare-and-swap of watch guards.
	beforeWatch func(*Client)
}

// New builds a hub; call Close (or Shutdown) to stop its keep-alive loop.
func New(o Options) *Hub {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 64 << 10
	}
	if o.MaxRooms <= 0 {
		o.MaxRooms = 100
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 1 << 20
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 30 * time.Second
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = max(fdLimit()-fdReserve, 64)
	}
	if o.UpgradeBurst <= 0 {
		o.UpgradeBurst = 1
	}
	if o.ActionBurst <= 0 {
		o.ActionBurst = 1
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
		rooms:    make(map[string]*members),
		stopPing: make(chan struct{}),
		admit:    admission{subjects: map[string]int32{}, addrs: map[netip.Prefix]int64{}},
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	o.Metrics.WSQueuedBytes.Set(func() float64 { return float64(h.queued.Load()) })
	h.upgrader = gws.NewUpgrader(&handler{h: h}, &gws.ServerOption{
		ReadMaxPayloadSize: o.MaxMessageBytes,
		ReadBufferSize:     readBufferSize,
		ParallelGolimit:    1, // messages of a client are handled in order, on its goroutine
		CheckUtf8Enabled:   true,
		HandshakeTimeout:   10 * time.Second,
		NewSession:         func() gws.SessionStorage { return &session{} },
		Recovery:           gws.Recovery,
	})
	h.poll = newPoller(h)
	h.goTask("hub keep-alive", h.keepAlive)
	if o.Streams != nil && o.Streams.CheckEvery > 0 {
		h.goTask("stream check", h.checkLoop)
	}
	return h
}

// goTask runs f on a goroutine Shutdown waits for, labelled for pprof
// ("task": name); false, running nothing, once Shutdown began (its wait
// must cover every task).
func (h *Hub) goTask(name string, f func()) bool {
	h.taskMu.Lock()
	if h.ctx.Err() != nil {
		h.taskMu.Unlock()
		return false
	}
	h.tasks.Add(1)
	h.taskMu.Unlock()
	go pprof.Do(h.ctx, pprof.Labels("task", name), func(context.Context) {
		defer h.tasks.Done()
		f()
	})
	return true
}

// SetPresence connects the hub to the other instances; call it before the
// first client connects.
func (h *Hub) SetPresence(p Presence) { h.opts.Presence = p }

// Upgrade turns an authenticated request into a client. The caller has
// verified claims; gws answers a request that is not a WebSocket handshake.
// Past the connection limits it returns a *Refusal before the upgrade,
// for the caller to answer.
func (h *Hub) Upgrade(w http.ResponseWriter, r *http.Request, claims *auth.Claims) error {
	// Counted before anything else, under admitMu: Shutdown's wait then
	// covers every connection it did not refuse.
	h.admitMu.Lock()
	if h.closing.Load() {
		h.admitMu.Unlock()
		return &Refusal{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "server is shutting down", RetryAfter: time.Second}
	}
	h.wg.Add(1) // done by OnClose once the client exists, or here if the upgrade fails
	h.admitMu.Unlock()
	if ref := h.admitConn(claims.Subject); ref != nil {
		h.wg.Done()
		return ref
	}
	sc, raw, err := hijack(w)
	if err != nil {
		h.release(claims.Subject)
		h.wg.Done()
		return err
	}
	socket, err := h.upgrader.UpgradeFromConn(sc, newReader(sc), r)
	if err != nil {
		h.release(claims.Subject)
		h.wg.Done()
		return err // gws answered 400 and closed
	}
	c := newClient(h, claims, socket, sc, raw)
	c.remote = r.RemoteAddr
	sc.c = c // from now on gws writes through the client's queue
	socket.Session().Store(sessionKey, c)
	go h.open(c, r.URL.Query().Get("since")) // which then starts reading it
	return nil
}

// Closing reports whether Shutdown has begun (new connections are refused).
func (h *Hub) Closing() bool { return h.closing.Load() }

// register makes c reachable: by id and in its own notification room.
func (h *Hub) register(c *Client) {
	h.mu.Lock()
	h.clients[c.id] = c
	c.index = int32(len(h.list))
	h.list = append(h.list, c)
	h.addLocked(c.ownRoom, c)
	h.mu.Unlock()
	h.m.Connections.Inc()
}

func (h *Hub) unregister(c *Client) {
	rooms := c.roomList()
	h.mu.Lock()
	if h.clients[c.id] == c {
		delete(h.clients, c.id)
		last := h.list[len(h.list)-1]
		h.list[c.index], last.index = last, c.index
		h.list[len(h.list)-1] = nil
		h.list = h.list[:len(h.list)-1]
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
	m := h.rooms[room]
	if m == nil {
		m = &members{}
		h.rooms[room] = m
	}
	m.add(c)
}

func (h *Hub) removeLocked(room string, c *Client) {
	if m := h.rooms[room]; m != nil {
		m.remove(c)
		if len(m.list) == 0 {
			delete(h.rooms, room)
		}
	}
}

// members are the clients of one room. Most rooms are one recipient's and
// hold a client or two: a slice, with an index added once a room grows.
type members struct {
	list  []*Client
	index map[*Client]int
}

const indexRoomsFrom = 32

func (m *members) add(c *Client) {
	if m.index != nil {
		if _, ok := m.index[c]; ok {
			return
		}
		m.index[c] = len(m.list)
	} else {
		for _, x := range m.list {
			if x == c {
				return
			}
		}
		if len(m.list) >= indexRoomsFrom {
			m.index = make(map[*Client]int, 2*len(m.list))
			for i, x := range m.list {
				m.index[x] = i
			}
			m.index[c] = len(m.list)
		}
	}
	m.list = append(m.list, c)
}

func (m *members) remove(c *Client) {
	i := -1
	if m.index != nil {
		if j, ok := m.index[c]; ok {
			i = j
			delete(m.index, c)
		}
	} else {
		for j, x := range m.list {
			if x == c {
				i = j
				break
			}
		}
	}
	if i < 0 {
		return
	}
	last := len(m.list) - 1
	if i != last {
		m.list[i] = m.list[last]
		if m.index != nil {
			m.index[m.list[i]] = i
		}
	}
	m.list[last] = nil
	m.list = m.list[:last]
}

// Deliver sends each frame (a JSON payload) to the members of its room:
// encoded once, the same bytes for every member. It returns the number
// of frames sent or queued.
//
// A large room's members are copied and written to outside the registry
// lock, so a connection arriving meanwhile does not wait for the frame to
// reach thousands of clients; it cannot miss the frame either, since its
// stream starts from the database, where the row already is. Per-client
// order is the client's own (its stream positions), not this lock's.
func (h *Hub) Deliver(items []Delivery) int {
	n := 0
	for i := range items {
		n += h.deliverOne(&items[i])
	}
	h.m.FramesSent.Add(float64(n))
	return n
}

func (h *Hub) deliverOne(d *Delivery) int {
	h.mu.RLock()
	m := h.rooms[d.Room]
	if m == nil {
		h.mu.RUnlock()
		return 0
	}
	wire := textFrame(d.Frame)
	if len(m.list) >= parallelFrom {
		list := slices.Clone(m.list)
		h.mu.RUnlock()
		return h.parallel(list, func(c *Client) bool { return c.deliverRoom(d.Room, d.Pos, wire) })
	}
	// Most rooms are one recipient's few devices: copied on the stack.
	var small [8]*Client
	list := append(small[:0], m.list...)
	h.mu.RUnlock()
	n := 0
	for _, c := range list {
		if c.deliverRoom(d.Room, d.Pos, wire) {
			n++
		}
	}
	return n
}

// parallelFrom is the audience from which a frame is written by several
// goroutines at once (a variable for the tests).
var parallelFrom = 1024

// parallel applies send to every client, spread over goroutines that each
// take a contiguous share.
func (h *Hub) parallel(list []*Client, send func(*Client) bool) int {
	// Two writers per CPU: a writer's syscalls interleave with the others'
	// (measured: p99 of a 15,000-client broadcast 196 ms with one writer,
	// 146 ms with two, ~135 ms with four to eight on 2 cores).
	workers := 2 * runtime.GOMAXPROCS(0)
	if len(list) < parallelFrom {
		n := 0
		for _, c := range list {
			if send(c) {
				n++
			}
		}
		return n
	}
	var sent atomic.Int64
	var wg sync.WaitGroup
	share := (len(list) + workers - 1) / workers
	for start := 0; start < len(list); start += share {
		part := list[start:min(start+share, len(list))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for _, c := range part {
				if send(c) {
					n++
				}
			}
			sent.Add(int64(n))
		}()
	}
	wg.Wait()
	return int(sent.Load())
}

// SendRoom queues frame to the members of room.
func (h *Hub) SendRoom(room string, frame []byte) int {
	return h.Deliver([]Delivery{{Room: room, Frame: frame}})
}

// Broadcast sends frame (a JSON payload) to every client, in connection
// order, encoded once.
func (h *Hub) Broadcast(frame []byte) int {
	wire := textFrame(frame)
	h.mu.RLock()
	list := slices.Clone(h.list) // written outside the lock: see Deliver
	h.mu.RUnlock()
	n := h.parallel(list, func(c *Client) bool { return c.write(wire) })
	h.m.FramesSent.Add(float64(n))
	return n
}

// SendClient sends frame to one client; false if it is not connected here.
func (h *Hub) SendClient(id string, frame []byte) bool {
	h.mu.RLock()
	c := h.clients[id]
	h.mu.RUnlock()
	if c == nil {
		return false
	}
	ok := c.write(textFrame(frame))
	if ok {
		h.m.FramesSent.Inc()
	}
	return ok
}

// HasRoom reports whether a client of this hub is in room.
func (h *Hub) HasRoom(room string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.rooms[room] != nil
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

// missedPings is how many ping intervals a client may stay silent (or a
// flush may take nothing) before it is cut.
const missedPings = 3

// stallTimeout is how long a client may take no bytes at all.
func (h *Hub) stallTimeout() time.Duration { return missedPings * h.opts.PingInterval }

// keepAlive pings every client each interval and closes those that have
// sent nothing (not even a pong) for three intervals: a vanished peer
// would otherwise hold its connection for ever. Every second (or
// interval, when shorter) it closes the clients whose token expired
// (4001), unless a refresh moved their expiry.
func (h *Hub) keepAlive() {
	tick := min(time.Second, h.opts.PingInterval)
	t := time.NewTicker(tick)
	defer t.Stop()
	lastPing := time.Now()
	for {
		select {
		case <-h.stopPing:
			return
		case now := <-t.C:
			h.expire(now)
			if now.Sub(lastPing) < h.opts.PingInterval-tick/2 {
				continue
			}
			lastPing = now
			limit := now.Add(-missedPings * h.opts.PingInterval).UnixNano()
			for _, c := range h.snapshot() {
				if c.lastSeen.Load() < limit {
					c.abort("idle")
					continue
				}
				c.write(pingFrame)
			}
		}
	}
}

// expire closes the clients whose token's exp has passed.
func (h *Hub) expire(now time.Time) {
	t := uint32(now.Unix())
	var gone []*Client
	h.mu.RLock()
	for _, c := range h.list {
		if exp := c.expires.Load(); exp != 0 && exp <= t {
			gone = append(gone, c)
		}
	}
	h.mu.RUnlock()
	for _, c := range gone {
		c.closeWith(CloseTokenExpired, "token expired")
	}
}

// Shed closes n of this hub's clients, chosen at random, with 1012
// ("reconnect elsewhere"), spread over window: the balancer hands them
// back to the load balancer when this instance holds more than its share.
// They resume with ?since= wherever they land, missing nothing.
func (h *Hub) Shed(n int, window time.Duration) int {
	list := h.snapshot()
	if n <= 0 || len(list) == 0 {
		return 0
	}
	rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	list = list[:min(n, len(list))]
	if !h.goTask("shed", func() {
		for i, c := range list {
			if i > 0 && window > 0 {
				select {
				case <-h.ctx.Done():
					return
				case <-time.After(window / time.Duration(len(list))):
				}
			}
			c.closeWith(CloseReconnect, "rebalancing: reconnect with since")
		}
	}) {
		return 0
	}
	h.m.WSShed.Add(float64(len(list)))
	return len(list)
}

// Shutdown refuses new connections and closes every client with 1001
// ("going away"), spread evenly over window so they do not all reconnect
// to the next instance at the same instant. It returns when all are gone
// or ctx ends.
func (h *Hub) Shutdown(ctx context.Context, window time.Duration) {
	h.admitMu.Lock() // no wg.Add after this (Upgrade)
	h.closing.Store(true)
	h.admitMu.Unlock()
	h.taskMu.Lock()
	h.cancel() // catch-ups in progress stop; no task starts after this
	h.taskMu.Unlock()
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
		c.closeWith(CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); h.tasks.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range h.snapshot() {
			c.abort("shutdown deadline")
		}
	}
}

// Close stops the keep-alive loop and the idle poller; connections stay
// open (see Shutdown).
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		close(h.stopPing)
		h.poll.close()
	})
}
