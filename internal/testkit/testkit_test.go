package testkit

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/testhooks"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// recorder is a test as Start sees it: it keeps the errors reported and
// the cleanups, which the test runs when it wants to look at the outcome.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }

func (r *recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// end runs the cleanups, last registered first, and returns the errors.
func (r *recorder) end() string {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}

func TestTheEndOfATestChecksHowItsServeStopped(t *testing.T) {
	serve := func(rec *recorder, stall time.Duration, edit func(*config.Config)) *Instance {
		restore := testhooks.SetShutdownStall(stall)
		defer restore()
		return NewEnv(rec).Serve(rec, edit)
	}

	t.Run("a clean stop passes", func(t *testing.T) {
		rec := &recorder{TB: t}
		serve(rec, 0, nil)
		if errs := rec.end(); errs != "" {
			t.Errorf("a clean stop reported: %s", errs)
		}
	})

	t.Run("a shutdown past shutdown.timeout fails the test", func(t *testing.T) {
		rec := &recorder{TB: t}
		serve(rec, 3*time.Second, func(c *config.Config) { c.Shutdown.Timeout = time.Second })
		errs := rec.end()
		if !strings.Contains(errs, "still running at the shutdown deadline: test shutdown stall") {
			t.Errorf("the overrun was not reported; errors: %q", errs)
		}
	})

	t.Run("a run that does not end in time fails the test", func(t *testing.T) {
		rec := &recorder{TB: t}
		in := serve(rec, 3*time.Second, func(c *config.Config) { c.Shutdown.Timeout = 20 * time.Second })
		in.stopLimit = 200 * time.Millisecond
		done := in.done
		errs := rec.end()
		if !strings.Contains(errs, ErrStopOverrun.Error()) {
			t.Errorf("the overrun was not reported; errors: %q", errs)
		}
		select { // the stalled routine ends after its 3 s: nothing is left behind
		case err := <-done:
			if err != nil {
				t.Errorf("the run, once it ended: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the run did not end")
		}
	})

	t.Run("a test that stops its instance itself sees the error", func(t *testing.T) {
		rec := &recorder{TB: t}
		in := serve(rec, 3*time.Second, func(c *config.Config) { c.Shutdown.Timeout = time.Second })
		if err := in.Stop(); err == nil || errors.Is(err, ErrStopOverrun) {
			t.Errorf("Stop = %v, want the run's shutdown error", err)
		}
		if errs := rec.end(); errs != "" {
			t.Errorf("after an explicit Stop the cleanup reported: %s", errs)
		}
	})
}
