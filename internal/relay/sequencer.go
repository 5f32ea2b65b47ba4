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
	// Writers' commit markers whose horizon was held by other writers
	// then in flight, and the writers known to have committed since (their
	// own markers): when every writer holding a marker back has committed,
	// the horizon moves to the marker's top without waiting for a tick.
	markers   []marker
	committed map[int64]bool
	bound     int64         // every notification below this seq is delivered
	advanced  chan struct{} // closed (and replaced) when bound moves
	moved     time.Time     // when bound last moved or the first item waited
}

type marker struct {
	top     int64
	writers []int64
}

// maxMarkers bounds the markers kept: enough for the writers of a few
// instances overlapping; past it the oldest is dropped (a tick then moves
// the horizon instead).
const maxMarkers = 32

// maxCommitted bounds the writers remembered as committed above the
// horizon (one per transaction while a long one holds the horizon back).
const maxCommitted = 1 << 14

func newSequencer(deliver func([]hub.Delivery, int64)) *sequencer {
	return &sequencer{deliver: deliver, expected: map[int64]int{}, committed: map[int64]bool{}, advanced: make(chan struct{}), moved: time.Now()}
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
	s.raiseLocked(h)
	s.releaseLocked()
}

// marker takes a writer's commit marker: writer xid has committed (its
// notifications came before this), and when the marker was made every
// writer below top had ended but those listed (h is the smallest of them,
// or top). A listed writer below the horizon, or whose own marker came
// since, has ended too: each kept marker holds the horizon up to its oldest
// writer still in flight, or to its top once they all have ended.
func (s *sequencer) marker(xid, h, top int64, writers []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed[xid] = true
	s.raiseLocked(h)
	if len(writers) > 0 && top > s.horizon {
		s.markers = append(s.markers, marker{top: top, writers: writers})
		if len(s.markers) > maxMarkers {
			s.markers = slices.Delete(s.markers, 0, 1)
		}
	}
	for moved := true; moved; {
		moved = false
		kept := s.markers[:0]
		for _, m := range s.markers {
			hm := m.top
			for _, w := range m.writers {
				if w >= s.horizon && !s.committed[w] {
					hm = min(hm, w)
				}
			}
			if hm > s.horizon {
				s.horizon, moved = hm, true
			}
			if hm < m.top {
				kept = append(kept, m)
			}
		}
		clear(s.markers[len(kept):])
		s.markers = kept
	}
	for x := range s.committed {
		if x < s.horizon {
			delete(s.committed, x)
		}
	}
	if len(s.committed) > maxCommitted {
		// The horizon is held (a long writer in flight): forget what only
		// speeds things up; the ticks pass it when it ends.
		clear(s.committed)
		s.markers = s.markers[:0]
	}
	s.releaseLocked()
}

func (s *sequencer) raiseLocked(h int64) {
	if h > s.horizon {
		s.horizon = h
	}
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
