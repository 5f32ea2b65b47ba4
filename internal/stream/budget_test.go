package stream

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/event"
)

// One subject's connections share one budget: more connections do not
// replay faster (issue 20: 32 connections of one token sustained 22,425
// replayed frames per second with a budget per connection).
func TestTheReplayRateIsSharedByASubjectsConnections(t *testing.T) {
	b := NewBudget(1000, 100) // 1,000 changes/s, bursts of 100
	now := time.Unix(0, 0)
	b.now = func() time.Time { return now }
	var total time.Duration
	for conn := 0; conn < 32; conn++ {
		total += b.reserve("u1", 100)
	}
	// 3,200 changes at 1,000/s with 100 at once: the last waits ~3.1 s.
	if d := b.reserve("u1", 1); d < 3*time.Second {
		t.Errorf("after 32 connections took 100 each, the next waits %s; want over 3s", d)
	}
	if d := b.reserve("u2", 100); d != 0 {
		t.Errorf("another subject waits %s: budgets are per subject", d)
	}
	_ = total
}

func TestBudgetWaitEndsWithItsContext(t *testing.T) {
	b := NewBudget(1, 1)
	b.reserve("u1", 1000) // deep in debt
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Wait(ctx, "u1", 1); err == nil {
		t.Error("Wait returned nil while the budget was empty and ctx ended")
	}
}

func TestIdleSubjectsAreForgotten(t *testing.T) {
	b := NewBudget(100, 10)
	now := time.Unix(0, 0)
	b.now = func() time.Time { return now }
	for _, s := range []string{"a", "b", "c"} {
		b.reserve(s, 10)
	}
	now = now.Add(2 * time.Minute)
	b.reserve("d", 1)
	if n := b.Len(); n != 1 {
		t.Errorf("%d subjects kept after two idle minutes, want 1", n)
	}
}

// Heads requested while a read runs are served by one next read.
func TestHeadsAreReadInBatches(t *testing.T) {
	var mu sync.Mutex
	var reads [][]string
	release := make(chan struct{})
	h := &Heads{Read: func(_ context.Context, rs []string) (map[string]event.StreamHead, error) {
		mu.Lock()
		reads = append(reads, rs)
		first := len(reads) == 1
		mu.Unlock()
		if first {
			<-release // the first read is slow: the others queue meanwhile
		}
		out := map[string]event.StreamHead{}
		for _, r := range rs {
			out[r] = event.StreamHead{Pos: int64(len(r))}
		}
		return out, nil
	}}
	var wg sync.WaitGroup
	get := func(r string) {
		defer wg.Done()
		hd, err := h.Get(context.Background(), r)
		if err != nil || hd.Pos != int64(len(r)) {
			t.Errorf("Get(%q) = %+v, %v", r, hd, err)
		}
	}
	wg.Add(1)
	go get("first")
	for {
		mu.Lock()
		n := len(reads)
		mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for _, r := range []string{"a", "bb", "ccc", "a"} {
		wg.Add(1)
		go get(r)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	h.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(reads) != 2 || len(reads[1]) != 3 {
		t.Errorf("reads %v, want the first alone and then a, bb, ccc together", reads)
	}
}
