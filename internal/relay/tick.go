package relay

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/signal-notify/signal/internal/store"
)

// Ticks move the horizon (store/order.go) through the relay channel, so a
// listener learns of a horizon only after the notifications of every
// transaction below it. An instance asks for one after each of its own
// commits, and whenever something has waited too long (a writer elsewhere
// may have died between its commit and its tick). Requests made while a
// tick runs are served by the next one: at most one tick at a time.
type ticker struct {
	mu      sync.Mutex
	want    uint64        // requests made
	done    uint64        // requests served by a finished tick
	lastX   int64         // id of the tick transaction that served done
	served  chan struct{} // closed (and replaced) when done moves
	wake    chan struct{}
	stalled time.Duration
}

func (t *ticker) init() {
	t.served = make(chan struct{})
	t.wake = make(chan struct{}, 1)
	t.stalled = 20 * time.Millisecond
}

// requestTick asks for a tick that starts after this call; it returns the
// request's number.
func (r *Relay) requestTick() uint64 {
	t := &r.ticks
	t.mu.Lock()
	t.want++
	n := t.want
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return n
}

func tickPrefix(origin string) string {
	o, _ := json.Marshal(origin)
	return `{"o":` + string(o) + `,"k":"` + kindTick + `",`
}

// tickLoop runs the requested ticks, and one whenever deliveries have
// waited longer than the stall time.
func (r *Relay) tickLoop(ctx context.Context) {
	t := &r.ticks
	check := time.NewTicker(t.stalled)
	defer check.Stop()
	prefix := tickPrefix(r.o.InstanceID)
	wait := t.stalled
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		case <-check.C:
			if !r.seq.stalled(t.stalled) {
				continue
			}
			r.requestTick()
			continue
		}
		t.mu.Lock()
		target := t.want
		t.mu.Unlock()
		_, x, err := r.o.Store.Tick(ctx, store.RelayChannel, prefix)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Debug("relay tick failed, retrying", "err", err, "wait", wait.String())
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
			r.requestTick()
			continue
		}
		wait = t.stalled
		t.mu.Lock()
		if target > t.done {
			t.done, t.lastX = target, x
			close(t.served)
			t.served = make(chan struct{})
		}
		t.mu.Unlock()
	}
}

// tickAfter returns the transaction id of a tick that started after the
// call (so above every transaction id assigned before it).
func (r *Relay) tickAfter(ctx context.Context) (int64, error) {
	n := r.requestTick()
	t := &r.ticks
	for {
		t.mu.Lock()
		done, x, ch := t.done, t.lastX, t.served
		t.mu.Unlock()
		if done >= n {
			return x, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Barrier returns once this instance has delivered every notification of
// every transaction that began before the call. A client registered in a
// room before the call therefore gets, live, every notification committed
// later: the transactions that could have missed its registration (they
// read the rooms before it was committed) are all behind the barrier.
func (r *Relay) Barrier(ctx context.Context) error {
	x, err := r.tickAfter(ctx)
	if err != nil {
		return err
	}
	target := store.SeqOf(x, 0)
	for {
		r.requestTick() // the tick above cannot pass itself: the next one will
		wctx, cancel := context.WithTimeout(ctx, 25*time.Millisecond)
		err := r.seq.waitBound(wctx, target)
		cancel()
		if err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
