package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
)

// routines starts the daemon's long-lived goroutines and waits for them, as
// nats-server's startGoRoutine does: every one is started here, under a
// name, so the first to fail ends the run and a shutdown that overruns its
// deadline says which ones are still running.
type routines struct {
	log *slog.Logger
	wg  sync.WaitGroup

	mu      sync.Mutex
	running map[string]int
	err     error

	failed   chan struct{} // closed when the first one returns an error
	failOnce sync.Once
}

func newRoutines(log *slog.Logger) *routines {
	return &routines{log: log, running: map[string]int{}, failed: make(chan struct{})}
}

// Go runs f in a tracked goroutine called name.
func (r *routines) Go(name string, f func() error) {
	r.mu.Lock()
	r.running[name]++
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
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
	}()
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

// Wait waits for every routine until ctx ends; then it returns an error
// naming those still running (they are left behind: the process exits).
func (r *routines) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("still running at the shutdown deadline: %s", strings.Join(r.Running(), ", "))
	}
}
