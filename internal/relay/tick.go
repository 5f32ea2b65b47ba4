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
// transaction below it. Most of the horizon's moves come with the writers'
// own commits (store.Tx.NotifyHorizon); a tick is sent when something has
// waited longer than the stall time (a writer that rolled back, or one that
// committed while an older one was in flight), and when a barrier needs
// one. Requests made while a tick runs are served by the next one: at most
// one tick at a time.
type ticker struct {
	mu      sync.Mutex
	want    uint64        // requests made
	done    uint64        // requests served by a finished tick
	lastX   int64         // id of the tick transaction that served done
	served  chan struct{} // closed (and replaced) when done moves
	wake    chan struct{} // a tick was requested
	check   chan struct{} // something started to wait
	stalled time.Duration
}

func (t *ticker) init() {
	t.served = make(chan struct{})
	t.wake = make(chan struct{}, 1)
	t.check = make(chan struct{}, 1)
	t.stalled = 10 * time.Millisecond
}

// kickCheck tells the loop something waits, so it arms the stall timer.
func (t *ticker) kickCheck() {
	select {
	case t.check <- struct{}{}:
	default:
	}
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
// waited longer than the stall time. The stall timer runs only while
// something waits.
func (r *Relay) tickLoop(ctx context.Context) {
	t := &r.ticks
	prefix := tickPrefix(r.o.InstanceID)
	wait := t.stalled
	var last time.Time     // of the last tick: a stall waits a while after it too
	var reported time.Time // of the last stall report
	for {
		if since, waiting := r.seq.waitingSince(); waiting && time.Since(since) > stallReport && time.Since(reported) > stallReport {
			reported = time.Now()
			st := r.seq.describe()
			r.log.Warn("pushes held back: a transaction that writes notifications is still in flight, or ticks do not arrive",
				"for", time.Since(since).Round(time.Millisecond).String(), "horizon", st.Horizon, "bound_xid", st.Bound>>store.SeqShift,
				"waiting", st.Waiting, "oldest_xid", st.Oldest>>store.SeqShift, "expected", st.Expected, "listener", r.Err())
		}
		var stall <-chan time.Time
		if since, waiting := r.seq.waitingSince(); waiting {
			stall = time.After(time.Until(later(since, last).Add(t.stalled)))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.check:
			continue // re-arm the stall timer
		case <-t.wake:
		case <-stall:
		}
		last = time.Now()
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

// stallReport is how long pushes may be held back before it is logged.
const stallReport = 2 * time.Second

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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
