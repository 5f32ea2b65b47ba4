package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/hub"
	"github.com/signal-notify/signal/internal/metrics"
	"github.com/signal-notify/signal/internal/store"
)

// maxNotify is the largest payload sent inline; PostgreSQL's limit is 8000 bytes.
const maxNotify = 7900

// Message kinds.
const (
	kindNotifications = "n"
	kindRoom          = "room"
	kindBroadcast     = "all"
	kindClient        = "client"
	kindHello         = "hello"
	kindSpill         = "spill"
)

// envelope is one relay message.
type envelope struct {
	Origin string          `json:"o"`
	Kind   string          `json:"k"`
	Target string          `json:"t,omitempty"` // instance (client sends)
	Client string          `json:"c,omitempty"`
	Room   string          `json:"r,omitempty"`
	Frame  json.RawMessage `json:"f,omitempty"`
	Items  []item          `json:"d,omitempty"`
	Ref    int64           `json:"ref,omitempty"`
}

// item is one change of a stream: its room, position and frame.
type item struct {
	Room  string          `json:"r"`
	Pos   int64           `json:"s,omitempty"`
	Frame json.RawMessage `json:"f"`
}

// Options configure a Relay.
type Options struct {
	Store      *store.Store
	Hub        *hub.Hub
	InstanceID string
	HTTPAddr   string
	// OnGap is called, once this instance's presence is registered again,
	// when changes relayed by other instances may have been missed (the
	// listener was disconnected, or the instance was swept as dead): the
	// hub then checks every stream against the database (Hub.Resync).
	OnGap     func(ctx context.Context)
	Heartbeat time.Duration // default 5s
	DeadAfter time.Duration // an instance silent this long is removed; default 3 heartbeats
	Metrics   *metrics.Metrics
	Logger    *slog.Logger
}

// Relay connects this instance to the others.
type Relay struct {
	o   Options
	log *slog.Logger

	peers     atomic.Bool // another instance is alive
	listenErr atomic.Pointer[error]
	// gapAfterFlush: OnGap runs after the next presence write (which
	// restates everything) commits.
	gapAfterFlush atomic.Bool

	mu          sync.Mutex
	clientRooms map[string]store.ClientRow // local clients as registered
	roomCount   map[string]int             // local members per room
	pending     changes
	resync      bool
	waiters     []chan struct{}
	wake        chan struct{}
}

// changes coalesces presence updates between two flushes.
type changes struct {
	upsert map[string]store.ClientRow
	delete map[string]bool
	rooms  map[string]bool // true: opened, false: closed
}

func newChanges() changes {
	return changes{upsert: map[string]store.ClientRow{}, delete: map[string]bool{}, rooms: map[string]bool{}}
}

// New returns a relay; Run starts it.
func New(o Options) *Relay {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = 3 * o.Heartbeat
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	r := &Relay{
		o: o, log: o.Logger,
		clientRooms: map[string]store.ClientRow{},
		roomCount:   map[string]int{},
		pending:     newChanges(),
		wake:        make(chan struct{}, 1),
	}
	notYet := errors.New("relay starting")
	r.listenErr.Store(&notYet)
	return r
}

// Err reports why the relay cannot reach the other instances, or nil.
func (r *Relay) Err() error { return *r.listenErr.Load() }

// Run registers the instance, listens for relay messages, keeps presence
// and the heartbeat up to date, and unregisters the instance when ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	if err := r.o.Store.RegisterInstance(ctx, r.o.InstanceID, r.o.HTTPAddr); err != nil {
		return err
	}
	r.heartbeat(ctx)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); r.listen(ctx) }()
	go func() { defer wg.Done(); r.flushLoop(ctx) }()
	go func() { defer wg.Done(); r.heartbeatLoop(ctx) }()
	wg.Wait()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.o.Store.UnregisterInstance(cctx, r.o.InstanceID); err != nil {
		r.log.Warn("could not unregister instance; it will be swept", "err", err)
	}
	return nil
}

func (r *Relay) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(r.o.Heartbeat)
	defer t.Stop()
	purge := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.heartbeat(ctx)
			if purge++; purge%12 == 0 {
				if err := r.o.Store.PurgePayloads(ctx, 5*time.Minute); err != nil {
					r.log.Warn("purge relay payloads", "err", err)
				}
			}
		}
	}
}

func (r *Relay) heartbeat(ctx context.Context) {
	n, rejoined, err := r.o.Store.Heartbeat(ctx, r.o.InstanceID, r.o.HTTPAddr, r.o.DeadAfter)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("heartbeat failed", "err", err)
		}
		return
	}
	r.peers.Store(n > 0)
	if rejoined { // Run registered the row first: it was there
		// Swept as dead by another instance (a heartbeat came later than
		// cluster.dead_after): its clients and rooms were removed, and
		// notifications for them were not relayed here meanwhile.
		r.log.Warn("this instance was removed as dead by another (its heartbeat was late): stating its clients again and checking every stream", "dead_after", r.o.DeadAfter.String())
		r.gapAfterFlush.Store(true)
		r.requestResync()
	}
}

// gap checks every stream against the database, once the presence write
// that restated this instance's clients has committed: changes relayed by
// other instances may have been missed.
func (r *Relay) gap(ctx context.Context) {
	if r.o.OnGap == nil {
		return
	}
	r.o.Metrics.RelayGaps.Inc()
	r.o.OnGap(ctx)
}

// listen keeps a LISTEN connection open, reconnecting with backoff. After
// each (re)connection the instance announces itself and re-registers all
// it holds: the presence tables may have been emptied by a server restart.
func (r *Relay) listen(ctx context.Context) {
	wait := 100 * time.Millisecond
	lost := false // a listener was lost: NOTIFYs of that time never arrive
	for ctx.Err() == nil {
		conn, err := r.o.Store.Listen(ctx, store.RelayChannel)
		if err != nil {
			r.setListenErr(fmt.Errorf("relay listener: %w", err))
			r.log.Warn("relay listener cannot connect, retrying", "err", err, "wait", wait.String())
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(wait*2, 10*time.Second)
			continue
		}
		wait = 100 * time.Millisecond
		if lost {
			// Listening again: what other instances pushed meanwhile is
			// read back from the database, once this instance's clients
			// are registered again (the server may have been restarted
			// and its presence tables emptied).
			r.log.Warn("relay listener was disconnected: every stream is checked against the database")
			r.gapAfterFlush.Store(true)
		}
		r.requestResync()
		r.publish(ctx, envelope{Kind: kindHello})
		r.setListenErr(nil)
		lost = false
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				if ctx.Err() == nil {
					r.setListenErr(fmt.Errorf("relay listener: %w", err))
					r.log.Warn("relay listener lost its connection, reconnecting", "err", err)
					lost = true
				}
				break
			}
			r.receive(ctx, []byte(n.Payload))
		}
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(cctx)
		cancel()
	}
}

func (r *Relay) setListenErr(err error) { r.listenErr.Store(&err) }

func (r *Relay) receive(ctx context.Context, payload []byte) {
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		r.log.Warn("ignored a relay message that is not JSON", "err", err)
		return
	}
	if env.Origin == r.o.InstanceID {
		return
	}
	if env.Kind == kindSpill {
		b, err := r.o.Store.LoadPayload(ctx, env.Ref)
		if err != nil {
			r.log.Warn("relay payload unavailable", "ref", env.Ref, "err", err)
			return
		}
		if err := json.Unmarshal(b, &env); err != nil {
			r.log.Warn("ignored a stored relay message that is not JSON", "ref", env.Ref, "err", err)
			return
		}
	}
	r.o.Metrics.RelayReceived.WithLabelValues(env.Kind).Inc()
	h := r.o.Hub
	switch env.Kind {
	case kindHello:
		r.peers.Store(true)
	case kindNotifications:
		items := make([]hub.Delivery, len(env.Items))
		for i, it := range env.Items {
			items[i] = hub.Delivery{Room: it.Room, Pos: it.Pos, Frame: it.Frame}
		}
		h.Deliver(items) // each stream's cursor puts them in order
	case kindRoom:
		h.SendRoom(env.Room, env.Frame)
	case kindBroadcast:
		h.Broadcast(env.Frame)
	case kindClient:
		if env.Target == r.o.InstanceID {
			h.SendClient(env.Client, env.Frame)
		}
	}
}

// publish sends envelopes in one transaction, spilling large ones.
func (r *Relay) publish(ctx context.Context, envs ...envelope) error {
	return publish(ctx, poolSink{r.o.Store}, r.o.InstanceID, envs...)
}

// sink is where relay messages are written: the pool (sent at once) or a
// transaction (sent when, and only if, it commits).
type sink interface {
	SpillPayload(ctx context.Context, payload []byte) (int64, error)
	Notify(ctx context.Context, channel string, payloads []string) error
}

type poolSink struct{ *store.Store }

func publish(ctx context.Context, to sink, origin string, envs ...envelope) error {
	payloads := make([]string, 0, len(envs))
	for _, env := range envs {
		env.Origin = origin
		b, err := json.Marshal(env)
		if err != nil {
			return fmt.Errorf("encode relay message: %w", err)
		}
		if len(b) > maxNotify {
			ref, err := to.SpillPayload(ctx, b)
			if err != nil {
				return err
			}
			b, _ = json.Marshal(envelope{Origin: origin, Kind: kindSpill, Ref: ref})
		}
		payloads = append(payloads, string(b))
	}
	return to.Notify(ctx, store.RelayChannel, payloads)
}

// Stage makes the changes a transaction commits reach their rooms: inside
// tx, before its commit (and after the changes took their positions, see
// store/stream.go), it relays them to the instances holding their rooms,
// which receive them if and only if tx commits; settle delivers them here
// once it did.
func (r *Relay) Stage(ctx context.Context, tx *store.Tx, items []hub.Delivery) (settle func(committed bool), err error) {
	remote, err := lookupRemote(ctx, tx, r.o.InstanceID, items)
	if err != nil {
		return nil, err
	}
	return r.StageFor(ctx, tx, items, remote)
}

// StageFor is Stage when the caller looked up the remote rooms itself
// (after the changes took their positions).
func (r *Relay) StageFor(ctx context.Context, tx *store.Tx, items []hub.Delivery, remote []string) (settle func(committed bool), err error) {
	if err := stageTo(ctx, tx, r.o.InstanceID, items, remote); err != nil {
		return nil, err
	}
	return func(committed bool) {
		if committed {
			r.o.Hub.Deliver(items)
		}
	}, nil
}

// Publisher pushes notifications to the instances holding their rooms, from
// a process that holds no clients itself (signalctl deadletters replay).
type Publisher struct {
	Store  *store.Store
	Origin string
}

// SendRoom sends a frame to the members of room on every instance (what
// the REST API's room send does), for a process without clients of its own.
func (p Publisher) SendRoom(ctx context.Context, room string, frame []byte) error {
	return publish(ctx, poolSink{p.Store}, p.Origin, envelope{Kind: kindRoom, Room: room, Frame: frame})
}

// StageRows relays the created frames of rows, inside tx, to the instances
// holding their rooms: frames are built for those rooms only.
func (p Publisher) StageRows(ctx context.Context, tx *store.Tx, rows []*event.Row) (func(committed bool), error) {
	rooms := make([]string, 0, len(rows))
	for _, r := range rows {
		rooms = append(rooms, r.Room())
	}
	remote, err := tx.RemoteRooms(ctx, p.Origin, rooms)
	if err != nil {
		return nil, fmt.Errorf("look up remote rooms: %w", err)
	}
	wanted := make(map[string]bool, len(remote))
	for _, r := range remote {
		wanted[r] = true
	}
	items := event.RowPushes(rows, func(room string) bool { return wanted[room] })
	if err := stageTo(ctx, tx, p.Origin, items, remote); err != nil {
		return nil, err
	}
	return func(bool) {}, nil
}

// Stage relays items inside tx, like Relay.Stage.
func (p Publisher) Stage(ctx context.Context, tx *store.Tx, items []hub.Delivery) (func(committed bool), error) {
	if err := stageRemote(ctx, tx, p.Origin, items); err != nil {
		return nil, err
	}
	return func(bool) {}, nil
}

// stageRemote relays committed-to-be changes, inside tx, to the instances
// holding members of their rooms.
func stageRemote(ctx context.Context, tx *store.Tx, origin string, items []hub.Delivery) error {
	remote, err := lookupRemote(ctx, tx, origin, items)
	if err != nil {
		return err
	}
	return stageTo(ctx, tx, origin, items, remote)
}

// lookupRemote returns the rooms of items that have members on other
// instances.
func lookupRemote(ctx context.Context, tx *store.Tx, origin string, items []hub.Delivery) ([]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	var rooms []string
	for _, it := range items {
		if !seen[it.Room] {
			seen[it.Room] = true
			rooms = append(rooms, it.Room)
		}
	}
	remote, err := tx.RemoteRooms(ctx, origin, rooms)
	if err != nil {
		return nil, fmt.Errorf("look up remote rooms: %w", err)
	}
	return remote, nil
}

// stageTo relays, inside tx, the items whose room is one of remote.
func stageTo(ctx context.Context, tx *store.Tx, origin string, items []hub.Delivery, remote []string) error {
	if len(remote) == 0 {
		return nil
	}
	wanted := make(map[string]bool, len(remote))
	for _, room := range remote {
		wanted[room] = true
	}
	var envs []envelope
	cur := envelope{Kind: kindNotifications}
	size := 64
	for _, it := range items {
		if !wanted[it.Room] {
			continue
		}
		n := len(it.Frame) + len(it.Room) + 40
		if len(cur.Items) > 0 && size+n > maxNotify {
			envs = append(envs, cur)
			cur, size = envelope{Kind: kindNotifications}, 64
		}
		cur.Items = append(cur.Items, item{Room: it.Room, Pos: it.Pos, Frame: it.Frame})
		size += n
	}
	if len(cur.Items) > 0 {
		envs = append(envs, cur)
	}
	return publish(ctx, tx, origin, envs...)
}

// SendRoom delivers frame to the room's members on every instance.
func (r *Relay) SendRoom(ctx context.Context, room string, frame []byte) error {
	r.o.Hub.SendRoom(room, frame)
	if !r.peers.Load() {
		return nil
	}
	return r.publish(ctx, envelope{Kind: kindRoom, Room: room, Frame: frame})
}

// Broadcast delivers frame to every client of every instance.
func (r *Relay) Broadcast(ctx context.Context, frame []byte) error {
	r.o.Hub.Broadcast(frame)
	if !r.peers.Load() {
		return nil
	}
	return r.publish(ctx, envelope{Kind: kindBroadcast, Frame: frame})
}

// SendClient delivers frame to one client wherever it is connected;
// event.ErrNotFound when no instance has it.
func (r *Relay) SendClient(ctx context.Context, clientID string, frame []byte) error {
	if r.o.Hub.SendClient(clientID, frame) {
		return nil
	}
	inst, err := r.o.Store.ClientInstance(ctx, clientID)
	if err != nil {
		return err
	}
	if inst == r.o.InstanceID { // registered here, gone meanwhile
		return event.ErrNotFound
	}
	return r.publish(ctx, envelope{Kind: kindClient, Target: inst, Client: clientID, Frame: frame})
}

// Clients lists the clients of every live instance.
func (r *Relay) Clients(ctx context.Context) ([]hub.ClientInfo, error) {
	rows, err := r.o.Store.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]hub.ClientInfo, len(rows))
	for i, c := range rows {
		out[i] = hub.ClientInfo{ID: c.ID, Subject: c.Subject, Rooms: c.Rooms, ConnectedSince: c.ConnectedAt.UTC(), Instance: c.InstanceID}
	}
	return out, nil
}
