package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

func TestRoutinesWaitForEveryOneAndNameTheStuck(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Run("Wait returns once every routine returned", func(t *testing.T) {
		r := newRoutines(log)
		release := make(chan struct{})
		for _, name := range []string{"a", "b", "b"} {
			r.Go(name, func() error { <-release; return nil })
		}
		if got := strings.Join(r.Running(), ","); got != "a,b" {
			t.Errorf("Running = %s, want a,b", got)
		}
		close(release)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if len(r.Running()) != 0 || r.Err() != nil {
			t.Errorf("after Wait: running %v, err %v", r.Running(), r.Err())
		}
	})

	t.Run("the first error closes Failed and is kept", func(t *testing.T) {
		r := newRoutines(log)
		boom := errors.New("boom")
		r.Go("consumer", func() error { return boom })
		select {
		case <-r.Failed():
		case <-time.After(10 * time.Second):
			t.Fatal("Failed not closed")
		}
		r.Go("relay", func() error { return errors.New("later") })
		_ = r.Wait(context.Background())
		if err := r.Err(); !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "consumer: ") {
			t.Errorf("Err = %v, want the first error, named", err)
		}
	})

	t.Run("a routine past the deadline is named", func(t *testing.T) {
		r := newRoutines(log)
		stuck := make(chan struct{})
		defer close(stuck)
		r.Go("http", func() error { return nil })
		r.Go("pool close", func() error { <-stuck; return nil })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := r.Wait(ctx)
		if err == nil || !strings.Contains(err.Error(), "pool close") || strings.Contains(err.Error(), "http") {
			t.Errorf("Wait = %v, want an error naming only the stuck routine", err)
		}
	})
	t.Run("none starts once Wait has begun", func(t *testing.T) {
		r := newRoutines(log)
		if err := r.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		ran := make(chan struct{}, 1)
		if r.Go("late", func() error { ran <- struct{}{}; return nil }) {
			t.Error("Go accepted a routine after Wait")
		}
		select {
		case <-ran:
			t.Error("the refused routine ran")
		case <-time.After(50 * time.Millisecond):
		}
		if len(r.Running()) != 0 {
			t.Errorf("Running = %v", r.Running())
		}
	})

	t.Run("each carries its name as a pprof label", func(t *testing.T) {
		r := newRoutines(log)
		release := make(chan struct{})
		started := make(chan struct{})
		r.Go("labelled one", func() error { close(started); <-release; return nil })
		<-started
		var prof bytes.Buffer
		if err := pprof.Lookup("goroutine").WriteTo(&prof, 1); err != nil {
			t.Fatal(err)
		}
		close(release)
		_ = r.Wait(context.Background())
		if !strings.Contains(prof.String(), `labels: {"routine":"labelled one"}`) {
			t.Errorf("no goroutine labelled routine=labelled one in the profile:\n%s", prof.String())
		}
	})
}
