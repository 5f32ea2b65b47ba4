package stream

import (
	"context"
	"sync"
	"time"
)

// Budget is the replay rate of token subjects: the changes per second the
// catch-ups of one subject may send, across all its connections (one token
// cannot multiply it by opening more). A token bucket per subject, made on
// first use and forgotten once full and idle.
type Budget struct {
	rate  float64 // changes per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewBudget returns a budget of rate changes per second per subject, with
// bursts of burst (at least one page's worth is sensible).
func NewBudget(rate float64, burst int) *Budget {
	return &Budget{rate: rate, burst: float64(max(burst, 1)), now: time.Now, buckets: map[string]*bucket{}}
}

// Wait takes n changes from subject's budget, waiting until they are
// there; it returns ctx's error if ctx ends first. n larger than the burst
// is taken in several waits.
func (b *Budget) Wait(ctx context.Context, subject string, n int) error {
	if b == nil || b.rate <= 0 {
		return nil
	}
	for left := float64(n); left > 0; {
		take := min(left, b.burst)
		d := b.reserve(subject, take)
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		left -= take
	}
	return nil
}

// reserve takes n tokens now (the bucket may go negative) and returns how
// long the caller must wait for them to have been there.
func (b *Budget) reserve(subject string, n float64) time.Duration {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(now)
	k := b.buckets[subject]
	if k == nil {
		k = &bucket{tokens: b.burst, at: now}
		b.buckets[subject] = k
	}
	k.tokens = min(b.burst, k.tokens+now.Sub(k.at).Seconds()*b.rate)
	k.at = now
	k.tokens -= n
	if k.tokens >= 0 {
		return 0
	}
	return time.Duration(-k.tokens / b.rate * float64(time.Second))
}

// sweepLocked forgets, once a minute, the buckets that are full again: a
// subject that stopped replaying costs nothing.
func (b *Budget) sweepLocked(now time.Time) {
	if now.Sub(b.swept) < time.Minute {
		return
	}
	b.swept = now
	for s, k := range b.buckets {
		if k.tokens+now.Sub(k.at).Seconds()*b.rate >= b.burst {
			delete(b.buckets, s)
		}
	}
}

// Len is the number of subjects the budget holds state for.
func (b *Budget) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buckets)
}
