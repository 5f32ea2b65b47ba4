package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
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
}
