package relay

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/signal-notify/signal/internal/hub"
	"github.com/signal-notify/signal/internal/store"
)

// sequencer hands stored notifications to the hub in seq order, and only
// below the horizon (store/order.go): a notification is delivered once no
// notification with a smaller seq can still be committed anywhere. So every
// instance pushes in the same order WebSocket replay reads, and a client
// may resume from the last id it received without missing one that was
// still in flight (issue 16).
//
// Notifications reach it from two sides: this instance's own transactions
// (expect before commit, settle after) and the other instances', relayed
// inside their transactions and so received before any tick that passes
// them. Ticks carry the horizon, through the same NOTIFY channel.
type sequencer struct {
	deliver func(items []hub.Delivery, bound int64)
	waiting func(float64) // told how many items wait (a metric); may be nil
	onWait  func()        // called when items start to wait; may be nil

	mu       sync.Mutex
	pending  []hub.Delivery // by seq
	expected map[int64]int  // own transactions staged, not yet settled
	horizon  int64          // from the latest tick
	bound    int64          // every notification below this seq is delivered
	advanced chan struct{}  // closed (and replaced) when bound moves
	moved    time.Time      // when bound last moved or the first item waited
}

func newSequencer(deliver func([]hub.Delivery, int64)) *sequencer {
	return &sequencer{deliver: deliver, expected: map[int64]int{}, advanced: make(chan struct{}), moved: time.Now()}
}

// expect holds back everything from transaction xid on until settle.
func (s *sequencer) expect(xid int64) {
	s.mu.Lock()
	s.expected[xid]++
	s.mu.Unlock()
}

// settle ends an expect: items are the transaction's notifications when it
// committed, nil when it did not.
func (s *sequencer) settle(xid int64, items []hub.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expected[xid]--; s.expected[xid] <= 0 {
		delete(s.expected, xid)
	}
	s.addLocked(items)
	s.releaseLocked()
}

// add takes committed notifications of another instance.
func (s *sequencer) add(items []hub.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(items)
	s.releaseLocked()
}

// advance takes a tick's horizon.
func (s *sequencer) advance(h int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h > s.horizon {
		s.horizon = h
	}
	s.releaseLocked()
}

func (s *sequencer) addLocked(items []hub.Delivery) {
	if len(items) == 0 {
		return
	}
	defer s.report()
	if len(s.pending) == 0 {
		s.moved = time.Now() // waiting starts now
		if s.onWait != nil {
			defer s.onWait()
		}
	}
	sorted := len(s.pending) == 0 || s.pending[len(s.pending)-1].Seq <= items[0].Seq
	s.pending = append(s.pending, items...)
	if !sorted || !slices.IsSortedFunc(items, bySeq) {
		slices.SortStableFunc(s.pending, bySeq)
	}
}

func bySeq(a, b hub.Delivery) int {
	switch {
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

// releaseLocked delivers, in order, what is below both the horizon and the
// oldest transaction of ours not yet settled. It delivers under the lock:
// the hub never blocks on a client, and order across callers is kept.
func (s *sequencer) releaseLocked() {
	limit := s.horizon
	for xid := range s.expected {
		limit = min(limit, xid)
	}
	bound := max(store.SeqOf(limit, 0), s.bound)
	n, _ := slices.BinarySearchFunc(s.pending, bound, func(d hub.Delivery, b int64) int {
		if d.Seq < b {
			return -1
		}
		return 1
	})
	if n == 0 && bound == s.bound {
		return
	}
	out := s.pending[:n:n]
	s.pending = slices.Clone(s.pending[n:])
	s.report()
	moved := bound > s.bound
	s.bound = bound
	s.moved = time.Now()
	s.deliver(out, bound)
	if moved {
		close(s.advanced)
		s.advanced = make(chan struct{})
	}
}

func (s *sequencer) report() {
	if s.waiting != nil {
		s.waiting(float64(len(s.pending)))
	}
}

// waitingSince reports whether something waits for the horizon, and since
// when the delivered bound last moved.
func (s *sequencer) waitingSince() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.moved, len(s.pending) > 0 || len(s.expected) > 0
}

// waitBound returns once every notification below seq bound is delivered.
func (s *sequencer) waitBound(ctx context.Context, bound int64) error {
	for {
		s.mu.Lock()
		ok, ch := s.bound >= bound, s.advanced
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// state is the bound delivered so far and what still waits (status, tests).
func (s *sequencer) state() (bound int64, pending, expected int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bound, len(s.pending), len(s.expected)
}

// OrderState describes what holds pushes back, for logs and /status.
type OrderState struct {
	Horizon  int64     `json:"horizon"`            // transaction id below which every writer has ended
	Bound    int64     `json:"bound"`              // seq below which everything was pushed
	Waiting  int       `json:"waiting"`            // notifications held for the horizon
	Oldest   int64     `json:"oldest,omitempty"`   // seq of the first one held
	Expected []int64   `json:"expected,omitempty"` // own transactions not yet settled
	Since    time.Time `json:"since"`              // when the bound last moved
}

func (s *sequencer) describe() OrderState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := OrderState{Horizon: s.horizon, Bound: s.bound, Waiting: len(s.pending), Since: s.moved}
	if len(s.pending) > 0 {
		st.Oldest = s.pending[0].Seq
	}
	for x := range s.expected {
		st.Expected = append(st.Expected, x)
	}
	slices.Sort(st.Expected)
	return st
}
