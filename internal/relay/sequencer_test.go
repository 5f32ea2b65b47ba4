package relay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/hub"
	"github.com/signal-notify/signal/internal/store"
)

// out records what a sequencer delivers.
type out struct {
	mu     sync.Mutex
	seqs   []int64
	bounds []int64
}

func (o *out) deliver(items []hub.Delivery, bound int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, it := range items {
		o.seqs = append(o.seqs, it.Seq)
	}
	o.bounds = append(o.bounds, bound)
}

func (o *out) take() []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.seqs
	o.seqs = nil
	return s
}

func items(seqs ...int64) []hub.Delivery {
	out := make([]hub.Delivery, len(seqs))
	for i, s := range seqs {
		out[i] = hub.Delivery{Room: "r", Seq: s, Frame: []byte(fmt.Sprint(s))}
	}
	return out
}

func seq(xid, i int64) int64 { return store.SeqOf(xid, i) }

func TestSequencer(t *testing.T) {
	type step struct {
		op   string // expect, settle, drop, add, tick, marker
		xid  int64
		seqs []int64
		want []int64 // delivered by this step, in order
		// marker: writer xid committed; its horizon h was computed from
		// top and the writers then in flight.
		h, top  int64
		writers []int64
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"nothing is delivered before a tick says it is below the horizon", []step{
			{op: "add", seqs: []int64{seq(10, 0), seq(10, 1)}},
			{op: "tick", xid: 10},
			{op: "tick", xid: 11, want: []int64{seq(10, 0), seq(10, 1)}},
		}},
		{"a later transaction waits for an earlier one still in flight", []step{
			{op: "expect", xid: 10},
			{op: "add", seqs: []int64{seq(12, 0)}},
			{op: "tick", xid: 13},
			{op: "settle", xid: 10, seqs: []int64{seq(10, 0)}, want: []int64{seq(10, 0), seq(12, 0)}},
		}},
		{"a transaction that did not commit releases what waited for it", []step{
			{op: "expect", xid: 10},
			{op: "add", seqs: []int64{seq(11, 0)}},
			{op: "tick", xid: 12},
			{op: "drop", xid: 10, want: []int64{seq(11, 0)}},
		}},
		{"items arriving out of order leave in seq order", []step{
			{op: "add", seqs: []int64{seq(12, 1), seq(12, 0)}},
			{op: "add", seqs: []int64{seq(11, 5)}},
			{op: "tick", xid: 20, want: []int64{seq(11, 5), seq(12, 0), seq(12, 1)}},
		}},
		{"a horizon never moves back", []step{
			{op: "tick", xid: 20},
			{op: "tick", xid: 15},
			{op: "add", seqs: []int64{seq(18, 0)}, want: []int64{seq(18, 0)}},
		}},
		// Two instances' writers overlap: B (11) commits while A (10) is in
		// flight, so B's marker stops at 10; A's marker was made while B was
		// in flight, so it stops at 11 — but B's marker came first: B has
		// committed, and A's marker moves the horizon to its top at once.
		{"a marker whose writers have committed moves the horizon to its top", []step{
			{op: "add", seqs: []int64{seq(11, 0)}},
			{op: "marker", xid: 11, h: 10, top: 12, writers: []int64{10}},
			{op: "add", seqs: []int64{seq(10, 0)}},
			{op: "marker", xid: 10, h: 11, top: 12, writers: []int64{11}, want: []int64{seq(10, 0), seq(11, 0)}},
		}},
		// Commits in the order 11, 12, 10: 10's marker was made while 11
		// was in flight, but 11's marker (made while 10 and 12 were) is
		// resolved once 10 and 12 have committed.
		{"an earlier marker is resolved when the writers it waited for commit", []step{
			{op: "add", seqs: []int64{seq(11, 0)}},
			{op: "marker", xid: 11, h: 10, top: 13, writers: []int64{10, 12}},
			{op: "add", seqs: []int64{seq(12, 0)}},
			{op: "marker", xid: 12, h: 10, top: 13, writers: []int64{10}},
			{op: "add", seqs: []int64{seq(10, 0)}},
			{op: "marker", xid: 10, h: 11, top: 12, writers: []int64{11}, want: []int64{seq(10, 0), seq(11, 0), seq(12, 0)}},
		}},
		{"a marker moves the horizon up to its oldest writer still in flight", []step{
			{op: "add", seqs: []int64{seq(11, 0), seq(12, 0)}},
			{op: "marker", xid: 11, h: 10, top: 14, writers: []int64{10, 12}},
			{op: "marker", xid: 10, h: 11, top: 12, writers: []int64{11}, want: []int64{seq(11, 0)}},
		}},
		{"a listed writer that never commits holds the horizon until a tick", []step{
			{op: "add", seqs: []int64{seq(11, 0)}},
			{op: "marker", xid: 11, h: 10, top: 12, writers: []int64{10}},
			{op: "tick", xid: 10},
			{op: "tick", xid: 12, want: []int64{seq(11, 0)}},
		}},
		{"an old row pushed again (a redelivery) goes out at once", []step{
			{op: "tick", xid: 20},
			{op: "expect", xid: 21},
			{op: "settle", xid: 21, seqs: []int64{seq(5, 0), seq(21, 0)}, want: []int64{seq(5, 0)}},
			{op: "tick", xid: 22, want: []int64{seq(21, 0)}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var o out
			s := newSequencer(o.deliver)
			for i, st := range c.steps {
				switch st.op {
				case "expect":
					s.expect(st.xid)
				case "settle":
					s.settle(st.xid, items(st.seqs...))
				case "drop":
					s.settle(st.xid, nil)
				case "add":
					s.add(items(st.seqs...))
				case "tick":
					s.advance(st.xid)
				case "marker":
					s.marker(st.xid, st.h, st.top, st.writers)
				}
				if got := o.take(); !slices.Equal(got, st.want) {
					t.Fatalf("step %d (%s %d %v): delivered %v, want %v", i, st.op, st.xid, st.seqs, got, st.want)
				}
			}
			for i := 1; i < len(o.bounds); i++ {
				if o.bounds[i] < o.bounds[i-1] {
					t.Errorf("bound went back: %v", o.bounds)
				}
			}
		})
	}
}

// Writers of several goroutines stage, commit and tick at random, as the
// ingest of one instance and the relay listener do; everything committed
// comes out once, in seq order, and the bound only grows.
func TestSequencerUnderConcurrentWritersDeliversEverythingOnceInOrder(t *testing.T) {
	var o out
	s := newSequencer(o.deliver)
	var xids sync.Mutex
	next := int64(100)
	var inflight sync.Map // xid → struct{}: what a horizon must stay below
	// A writer is known to be in flight before its id exists (the writer
	// lock comes first): here, both under one lock.
	newXid := func() int64 {
		xids.Lock()
		defer xids.Unlock()
		next++
		inflight.Store(next, struct{}{})
		return next
	}
	horizon := func() int64 {
		xids.Lock()
		h := next + 1
		xids.Unlock()
		inflight.Range(func(k, _ any) bool { h = min(h, k.(int64)); return true })
		return h
	}
	var committed sync.Map
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < 200; b++ {
				x := newXid()
				local := w%2 == 0 // half the writers are "this instance"
				if local {
					s.expect(x)
				}
				its := items(seq(x, 0), seq(x, 1))
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
				ok := rand.IntN(10) != 0
				if ok {
					committed.Store(x, true)
				}
				switch {
				case local && ok:
					s.settle(x, its)
				case local:
					s.settle(x, nil)
				case ok:
					s.add(its) // relayed inside the transaction: before it ends
				}
				inflight.Delete(x)
				s.advance(horizon())
			}
		}()
	}
	wg.Wait()
	s.advance(horizon())
	got := o.take()
	if !slices.IsSorted(got) {
		t.Fatal("delivered out of seq order")
	}
	want := 0
	committed.Range(func(_, _ any) bool { want += 2; return true })
	if len(got) != want {
		t.Fatalf("delivered %d, want %d", len(got), want)
	}
	if len(slices.Compact(got)) != want {
		t.Fatal("something was delivered twice")
	}
	if bound, pending, expected := s.state(); pending != 0 || expected != 0 || bound == 0 {
		t.Errorf("left: bound %d, %d pending, %d expected", bound, pending, expected)
	}
}

func TestWaitBoundReturnsOnceTheBoundIsPassed(t *testing.T) {
	s := newSequencer(func([]hub.Delivery, int64) {})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.waitBound(ctx, seq(10, 0)); err == nil {
		t.Fatal("returned before the bound was reached")
	}
	done := make(chan error, 1)
	go func() { done <- s.waitBound(context.Background(), seq(10, 0)) }()
	s.advance(9)
	select {
	case <-done:
		t.Fatal("returned below the bound")
	case <-time.After(20 * time.Millisecond):
	}
	s.advance(10)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// While a writer holds the horizon back, the commits heard above it are
// remembered only up to a bound; past it the sequencer falls back on ticks
// and still delivers everything once the horizon passes.
func TestCommitsHeardAboveAHeldHorizonAreBounded(t *testing.T) {
	var o out
	s := newSequencer(o.deliver)
	s.advance(10)
	for x := int64(11); x < 11+maxCommitted+10; x++ {
		s.add(items(seq(x, 0)))
		s.marker(x, 10, x+1, []int64{10}) // 10 is still in flight
		if len(s.committed) > maxCommitted || len(s.markers) > maxMarkers {
			t.Fatalf("after writer %d: %d commits and %d markers remembered", x, len(s.committed), len(s.markers))
		}
	}
	if got := o.take(); len(got) != 0 {
		t.Fatalf("delivered %d items while writer 10 held the horizon", len(got))
	}
	s.advance(11 + maxCommitted + 10)
	if got := o.take(); len(got) != maxCommitted+10 {
		t.Fatalf("delivered %d items after the tick, want %d", len(got), maxCommitted+10)
	}
}
