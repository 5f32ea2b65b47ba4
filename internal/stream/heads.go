package stream

import (
	"context"
	"sync"
	"time"

	"github.com/signal-notify/signal/internal/event"
)

// Heads reads stream heads in batches: the requests made while one read
// runs are served by the next, so a burst of connections (a reconnect
// storm after a restart) costs a few queries, not one each.
type Heads struct {
	// Read reads the heads of recipients (store.Heads: locked, so that no
	// writer is in flight on them).
	Read func(ctx context.Context, recipients []string) (map[string]event.StreamHead, error)
	// MaxBatch bounds the recipients of one read (default 5,000).
	MaxBatch int

	mu      sync.Mutex
	waiting map[string][]chan headResult
	order   []string // recipients in the order they were first asked for
	running bool
	wg      sync.WaitGroup
}

type headResult struct {
	head event.StreamHead
	err  error
}

// Get returns recipient's head, read after the call began.
func (h *Heads) Get(ctx context.Context, recipient string) (event.StreamHead, error) {
	ch := make(chan headResult, 1)
	h.mu.Lock()
	if h.waiting == nil {
		h.waiting = map[string][]chan headResult{}
	}
	if _, ok := h.waiting[recipient]; !ok {
		h.order = append(h.order, recipient)
	}
	h.waiting[recipient] = append(h.waiting[recipient], ch)
	if !h.running {
		h.running = true
		h.wg.Add(1)
		go h.loop()
	}
	h.mu.Unlock()
	select {
	case r := <-ch:
		return r.head, r.err
	case <-ctx.Done():
		return event.StreamHead{}, ctx.Err()
	}
}

// loop reads batches until nobody waits.
func (h *Heads) loop() {
	defer h.wg.Done()
	limit := h.MaxBatch
	if limit <= 0 {
		limit = 5000
	}
	for {
		h.mu.Lock()
		if len(h.order) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		n := min(len(h.order), limit)
		batch := h.order[:n:n]
		h.order = h.order[n:]
		waiters := make(map[string][]chan headResult, n)
		for _, r := range batch {
			waiters[r] = h.waiting[r]
			delete(h.waiting, r)
		}
		h.mu.Unlock()
		// A read is not cancelled by one waiter leaving; it is bounded.
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		heads, err := h.Read(ctx, batch)
		cancel()
		for r, chans := range waiters {
			res := headResult{head: heads[r], err: err}
			for _, ch := range chans {
				ch <- res
			}
		}
	}
}

// Wait returns once no read is running.
func (h *Heads) Wait() { h.wg.Wait() }

// readTimeout bounds one batched read of heads.
const readTimeout = 10 * time.Second
