package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
)

// routines starts the daemon's long-lived goroutines and waits for them, as
// nats-server's startGoRoutine does: every one is started here, under a
// name, so the first to fail ends the run and a shutdown that overruns its
// deadline says which ones are still running. Once Wait has begun it
// refuses new ones (nothing would wait for them), and each carries its name
// as the pprof label "routine", so a goroutine profile says whose it is.
type routines struct {
	log *slog.Logger
	wg  sync.WaitGroup

	mu      sync.Mutex // guards running, err, closed, and wg.Add against wg.Wait
	running map[string]int
	err     error
	closed  bool

	failed   chan struct{} // closed when the first one returns an error
	failOnce sync.Once
}

func newRoutines(log *slog.Logger) *routines {
	return &routines{log: log, running: map[string]int{}, failed: make(chan struct{})}
}

// Go runs f in a tracked goroutine called name. It returns false, and runs
// nothing, once Wait has begun.
func (r *routines) Go(name string, f func() error) bool {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.log.Warn("not started: the routines are being waited for", "routine", name)
		return false
	}
	r.running[name]++
	r.wg.Add(1)
	r.mu.Unlock()
	go pprof.Do(context.Background(), pprof.Labels("routine", name), func(context.Context) {
		defer r.wg.Done()
		err := f()
		r.mu.Lock()
		if r.running[name]--; r.running[name] == 0 {
			delete(r.running, name)
		}
		if err != nil && r.err == nil {
			r.err = fmt.Errorf("%s: %w", name, err)
		}
		r.mu.Unlock()
		if err != nil {
			r.log.Error("stopped with an error", "routine", name, "err", err)
			r.failOnce.Do(func() { close(r.failed) })
		}
	})
	return true
}

// Failed is closed once a routine returned an error.
func (r *routines) Failed() <-chan struct{} { return r.failed }

// Err is the first routine error.
func (r *routines) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Running names the routines that have not returned, sorted.
func (r *routines) Running() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.running))
	for n := range r.running {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Wait refuses new routines, then waits for every one until ctx ends; then
// it returns an error naming those still running (they are left behind:
// the process exits).
func (r *routines) Wait(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("still running at the shutdown deadline: %s", strings.Join(r.Running(), ", "))
	}
}
