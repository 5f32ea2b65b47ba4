package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/signal-notify/signal/internal/event"
)

// memLog is a recipient's stream held in memory: what the database holds,
// for unit tests of the cursor and the catch-up (the store's side is tested
// against PostgreSQL in internal/store and internal/e2e).
type memLog struct {
	mu      sync.Mutex
	changes []event.StreamChange // positions floor+1… (or sparse below floor)
	floor   int64
	gone    map[int64]bool // positions removed (retention)
	failing atomic.Bool    // the database is away
	reads   atomic.Int64
}

// add appends the next change and returns it.
func (m *memLog) add() event.StreamChange {
	m.mu.Lock()
	defer m.mu.Unlock()
	pos := m.floor + int64(len(m.changes)) + 1
	if n := len(m.changes); n > 0 {
		pos = m.changes[n-1].Pos + 1
	}
	ch := event.StreamChange{Pos: pos, Frame: []byte(fmt.Sprintf(`{"topic":"t","pos":%d,"data":{}}`, pos))}
	m.changes = append(m.changes, ch)
	return ch
}

func (m *memLog) head() event.StreamHead {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := event.StreamHead{Pos: m.floor, Floor: m.floor, Counts: &event.Counts{Total: int64(len(m.changes))}}
	if n := len(m.changes); n > 0 {
		h.Pos = m.changes[n-1].Pos
	}
	return h
}

var errAway = errors.New("database away")

func (m *memLog) After(_ context.Context, _ string, pos int64, limit int) (event.StreamPage, error) {
	m.reads.Add(1)
	if m.failing.Load() {
		return event.StreamPage{}, errAway
	}
	page := event.StreamPage{Head: m.head()}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ch := range m.changes {
		if ch.Pos > pos && ch.Pos <= page.Head.Pos && !m.gone[ch.Pos] && len(page.Changes) < limit {
			page.Changes = append(page.Changes, ch)
		}
	}
	return page, nil
}

// fakeConn is a connection that records the positions and system frames
// it was sent, in order.
type fakeConn struct {
	mu      sync.Mutex
	frames  []frameSeen
	closed  atomic.Bool
	subject string
	waits   atomic.Int64
}

type frameSeen struct {
	Topic string          `json:"topic"`
	Pos   int64           `json:"pos"`
	Data  json.RawMessage `json:"data"`
}

func (c *fakeConn) Lock()   { c.mu.Lock() }
func (c *fakeConn) Unlock() { c.mu.Unlock() }

// Write is called under Lock (as the hub does).
func (c *fakeConn) Write(frame []byte) bool {
	if c.closed.Load() {
		return false
	}
	var f frameSeen
	if err := json.Unmarshal(frame, &f); err != nil {
		panic(err)
	}
	c.frames = append(c.frames, f)
	return true
}

func (c *fakeConn) WaitRoom(ctx context.Context, _ int) error {
	c.waits.Add(1)
	if c.closed.Load() {
		return errors.New("closed")
	}
	return ctx.Err()
}

func (c *fakeConn) Subject() string { return c.subject }

// positions returns the positions of the change frames received, and the
// system frames' topics.
func (c *fakeConn) positions() (pos []int64, system []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.frames {
		if f.Pos > 0 {
			pos = append(pos, f.Pos)
		} else {
			system = append(system, f.Topic)
		}
	}
	return pos, system
}

// last returns the last frame with topic.
func (c *fakeConn) last(topic string) (event.Synced, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.frames) - 1; i >= 0; i-- {
		if c.frames[i].Topic == topic {
			var s event.Synced
			if err := json.Unmarshal(c.frames[i].Data, &s); err != nil {
				panic(err)
			}
			return s, true
		}
	}
	return event.Synced{}, false
}

// checkDense fails the test unless pos is exactly from+1 … to, in order.
func checkDense(t *testing.T, pos []int64, from, to int64) {
	t.Helper()
	if int64(len(pos)) != to-from {
		t.Errorf("received %d changes, want %d (%d…%d)", len(pos), to-from, from+1, to)
	}
	for i, p := range pos {
		if p != from+int64(i)+1 {
			t.Fatalf("change %d has position %d, want %d (received: %v…)", i, p, from+int64(i)+1, pos[max(0, i-3):min(len(pos), i+3)])
		}
	}
}
