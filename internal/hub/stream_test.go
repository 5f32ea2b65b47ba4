package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/stream"
)

// memStreams is the database side of streams held in memory, for the hub's
// tests with real sockets (internal/e2e runs the same against PostgreSQL).
type memStreams struct {
	mu    sync.Mutex
	logs  map[string][]event.StreamChange // recipient → changes, positions 1…n
	ids   map[uuid.UUID]int64
	block chan struct{} // non-nil: After waits on it (or ctx)
	ended chan error
	reads atomic.Int64
}

func newMemStreams() *memStreams {
	return &memStreams{logs: map[string][]event.StreamChange{}, ids: map[uuid.UUID]int64{}}
}

// add commits the next change of recipient and returns it as the hub
// delivers it.
func (m *memStreams) add(recipient string) Delivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	pos := int64(len(m.logs[recipient]) + 1)
	frame := fmt.Sprintf(`{"topic":"%s","room":"%s","pos":%d,"data":{"n":%d}}`,
		event.TopicNotificationCreated, event.NotificationRoom(recipient), pos, pos)
	m.logs[recipient] = append(m.logs[recipient], event.StreamChange{Pos: pos, Frame: []byte(frame)})
	return Delivery{Room: event.NotificationRoom(recipient), Pos: pos, Frame: []byte(frame)}
}

func (m *memStreams) head(recipient string) event.StreamHead {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := int64(len(m.logs[recipient]))
	return event.StreamHead{Pos: n, Counts: &event.Counts{Total: n, Unread: n, Unseen: n}}
}

func (m *memStreams) After(ctx context.Context, recipient string, pos int64, limit int) (event.StreamPage, error) {
	m.reads.Add(1)
	if m.block != nil {
		select {
		case <-m.block:
		case <-ctx.Done():
			m.ended <- ctx.Err()
			return event.StreamPage{}, ctx.Err()
		}
	}
	page := event.StreamPage{Head: m.head(recipient)}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ch := range m.logs[recipient] {
		if ch.Pos > pos && len(page.Changes) < limit {
			page.Changes = append(page.Changes, ch)
		}
	}
	return page, nil
}

func (m *memStreams) streams(check time.Duration) *Streams {
	heads := &stream.Heads{Read: func(_ context.Context, rs []string) (map[string]event.StreamHead, error) {
		out := map[string]event.StreamHead{}
		for _, r := range rs {
			out[r] = m.head(r)
		}
		return out, nil
	}}
	return &Streams{
		Heads:    heads,
		Catchups: stream.NewCatchups(stream.Catchups{Source: m, PageSize: 5}, 2),
		PositionOf: func(_ context.Context, _ string, id uuid.UUID) (int64, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if p, ok := m.ids[id]; ok {
				return p, nil
			}
			return 0, event.ErrNotFound
		},
		Peek: func(_ context.Context, rs []string) (map[string]int64, error) {
			out := map[string]int64{}
			for _, r := range rs {
				out[r] = m.head(r).Pos
			}
			return out, nil
		},
		CheckEvery: check,
	}
}

// expectPositions reads change frames until it has n, and returns their
// positions in order; system frames in between are returned by topic.
func (c *rawClient) expectPositions(n int) (pos []int64, system []string) {
	c.t.Helper()
	for len(pos) < n {
		f := c.next(false)
		var tf struct {
			Topic string `json:"topic"`
			Pos   int64  `json:"pos"`
		}
		if err := json.Unmarshal(f.payload, &tf); err != nil {
			c.t.Fatalf("frame %q: %v", f.payload, err)
		}
		if tf.Pos > 0 {
			pos = append(pos, tf.Pos)
		} else {
			system = append(system, tf.Topic)
		}
	}
	return pos, system
}

// expectSynced reads a synced frame and returns its position.
func (c *rawClient) expectSynced() int64 {
	c.t.Helper()
	var d event.Synced
	json.Unmarshal(c.expect(event.TopicSynced).Data, &d)
	return d.Pos
}

func dense(t *testing.T, pos []int64, from int64) {
	t.Helper()
	for i, p := range pos {
		if p != from+int64(i)+1 {
			t.Fatalf("positions %v: want %d… in order", pos, from+1)
		}
	}
}

func TestAClientStartsAtTheHeadAndGetsLiveChangesInOrder(t *testing.T) {
	m := newMemStreams()
	for range 3 {
		m.add("u1")
	}
	s := newTestServer(t, Options{Streams: m.streams(0)})
	c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
	c.welcome()
	if p := c.expectSynced(); p != 3 {
		t.Fatalf("synced at %d, want the head, 3", p)
	}
	var ds []Delivery
	for range 4 {
		ds = append(ds, m.add("u1"))
	}
	s.h.Deliver(ds[:2])
	s.h.Deliver(ds[:1]) // a repeat
	s.h.Deliver(ds[2:])
	pos, system := c.expectPositions(4)
	dense(t, pos, 3)
	if len(system) > 0 {
		t.Errorf("unexpected frames %v", system)
	}
}

// A live frame that skips a position (the one before it was lost between
// instances) is not sent: the hub reads what is missing from the database
// first, then goes on.
func TestAGapInLiveFramesIsRepairedFromTheDatabase(t *testing.T) {
	m := newMemStreams()
	s := newTestServer(t, Options{Streams: m.streams(0)})
	c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
	c.welcome()
	c.expectSynced()
	d1, d2, d3 := m.add("u1"), m.add("u1"), m.add("u1")
	s.h.Deliver([]Delivery{d1})
	s.h.Deliver([]Delivery{d3}) // d2 lost on the way
	pos, _ := c.expectPositions(3)
	dense(t, pos, 0)
	_ = d2
	// The repair ends with synced, which carries the counts the changes
	// read from the database do not.
	if p := c.expectSynced(); p != 3 {
		t.Fatalf("synced at %d after the repair, want 3", p)
	}
	if got := s.h.m.StreamRepairs.WithLabelValues("gap"); testutilValue(got) != 1 {
		t.Errorf("gap repairs counted: %v", testutilValue(got))
	}
}

// A client resumes with ?since=<position>: joined, the changes after it
// (in pages), synced, then live ones.
func TestAClientResumesFromAPosition(t *testing.T) {
	m := newMemStreams()
	for range 23 {
		m.add("u1")
	}
	s := newTestServer(t, Options{Streams: m.streams(0)})
	c := s.dialRawQuery(s.token("u1", time.Hour), "since=4")
	c.welcome()
	var jd struct{ Replayed int }
	json.Unmarshal(c.expect(event.TopicJoined).Data, &jd)
	if jd.Replayed != 19 {
		t.Errorf("joined says %d to replay, want 19", jd.Replayed)
	}
	pos, _ := c.expectPositions(19)
	dense(t, pos, 4)
	if p := c.expectSynced(); p != 23 {
		t.Errorf("synced at %d", p)
	}
	s.h.Deliver([]Delivery{m.add("u1")})
	if pos, _ := c.expectPositions(1); pos[0] != 24 {
		t.Errorf("live change %v after the catch-up", pos)
	}
}

// The check (and the relay, after its listener came back) finds a live
// stream behind its head, with no later change to reveal the gap.
func TestResyncCatchesUpAStreamBehindItsHead(t *testing.T) {
	m := newMemStreams()
	s := newTestServer(t, Options{Streams: m.streams(0)})
	c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
	c.welcome()
	c.expectSynced()
	m.add("u1")
	m.add("u1") // both pushes lost
	if err := s.h.Resync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	pos, _ := c.expectPositions(2)
	dense(t, pos, 0)
}

func TestThePeriodicCheckCatchesUpWithoutBeingAsked(t *testing.T) {
	m := newMemStreams()
	s := newTestServer(t, Options{Streams: m.streams(50 * time.Millisecond)})
	c := s.dialRaw(s.token("u1", time.Hour), dialOpts{})
	c.welcome()
	c.expectSynced()
	m.add("u1") // its push lost
	pos, _ := c.expectPositions(1)
	dense(t, pos, 0)
	if p := c.expectSynced(); p != 1 {
		t.Fatalf("synced at %d after the check's catch-up, want 1", p)
	}
}

func TestAResumePointItCannotResumeFromIsReset(t *testing.T) {
	m := newMemStreams()
	for range 5 {
		m.add("u1")
	}
	s := newTestServer(t, Options{Streams: m.streams(0)})
	for _, tt := range []struct{ since, reason string }{
		{"9", event.ResetAhead},
		{uuid.NewString(), event.ResetUnknown},
	} {
		head := m.head("u1").Pos
		c := s.dialRawQuery(s.token("u1", time.Hour), "since="+tt.since)
		c.welcome()
		c.expect(event.TopicJoined)
		var d event.Synced
		json.Unmarshal(c.expect(event.TopicReset).Data, &d)
		if d.Reason != tt.reason || d.Pos != head {
			t.Errorf("since=%s: reset %+v, want %s at %d", tt.since, d, tt.reason, head)
		}
		s.h.Deliver([]Delivery{m.add("u1")}) // live after the reset
		if pos, _ := c.expectPositions(1); pos[0] != m.head("u1").Pos {
			t.Errorf("after the reset: %v", pos)
		}
	}
	c := s.dialRawQuery(s.token("u1", time.Hour), "since=not-a-position")
	c.welcome()
	c.expectError(CodeInvalidSince)
}

func TestShutdownEndsCatchUps(t *testing.T) {
	m := newMemStreams()
	m.add("u1")
	m.block, m.ended = make(chan struct{}), make(chan error, 1)
	s := newTestServer(t, Options{Streams: m.streams(0)})
	c := s.dialRawQuery(s.token("u1", time.Hour), "since=0")
	c.welcome()
	for m.reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.h.Shutdown(ctx, 0)
	if err := <-m.ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the catch-up's read ended with %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Shutdown took %s", took)
	}
}

// Joining another recipient's notification room (a token whose rooms allow
// it) starts a stream of that room with its own cursor.
func TestJoiningANotificationRoomWithSinceCatchesItUp(t *testing.T) {
	m := newMemStreams()
	for range 7 {
		m.add("u2")
	}
	s := newTestServer(t, Options{Streams: m.streams(0)})
	c := s.dialRaw(s.token("ops", time.Hour, "signal/notification/*"), dialOpts{})
	c.welcome()
	c.expectSynced() // its own room
	c.sendText(`{"action":"join","room":"signal/notification/u2","since":"2"}`)
	c.expect(event.TopicJoined)
	pos, _ := c.expectPositions(5)
	dense(t, pos, 2)
	c.expectSynced()
	c.sendText(`{"action":"leave","room":"signal/notification/u2"}`)
	c.expect(event.TopicLeft)
	s.h.Deliver([]Delivery{m.add("u2")})
	c.sendText(`{"action":"ping"}`)
	c.expect(event.TopicPong) // nothing of u2's after leaving
}

func testutilValue(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }

// A client that joins its room again with since while a catch-up of it runs
// (one it asked for, or a repair the hub started) is not refused: the
// stream starts over from since at the joined reply, and the old catch-up
// writes nothing more.
func TestJoiningAgainWhileACatchUpRunsStartsTheStreamOver(t *testing.T) {
	m := newMemStreams()
	for range 10 {
		m.add("u1")
	}
	m.block, m.ended = make(chan struct{}), make(chan error, 4)
	s := newTestServer(t, Options{Streams: m.streams(0)})
	c := s.dialRawQuery(s.token("u1", time.Hour), "since=0")
	c.welcome()
	c.expect(event.TopicJoined)
	for m.reads.Load() == 0 { // the first catch-up waits in its read
		time.Sleep(time.Millisecond)
	}
	c.sendText(`{"action":"join","room":"signal/notification/u1","since":"4"}`)
	var jd struct{ Replayed int }
	json.Unmarshal(c.expect(event.TopicJoined).Data, &jd)
	if jd.Replayed != 6 {
		t.Errorf("joined again says %d to replay, want 6", jd.Replayed)
	}
	close(m.block)
	pos, system := c.expectPositions(6)
	dense(t, pos, 4)
	if len(system) > 0 {
		t.Errorf("unexpected frames %v", system)
	}
	if p := c.expectSynced(); p != 10 {
		t.Errorf("synced at %d, want 10", p)
	}
	c.sendText(`{"action":"ping"}`)
	c.expect(event.TopicPong) // nothing of the old catch-up's
	s.h.Deliver([]Delivery{m.add("u1")})
	if pos, _ := c.expectPositions(1); pos[0] != 11 {
		t.Errorf("live change %v after the new catch-up", pos)
	}
}

// The hub's goroutines carry the pprof label "task", so a goroutine
// profile of a busy instance says what its goroutines are doing.
func TestHubTasksAreLabelledForPprof(t *testing.T) {
	m := newMemStreams()
	m.add("u1")
	m.block, m.ended = make(chan struct{}), make(chan error, 1)
	defer close(m.block)
	s := newTestServer(t, Options{Streams: m.streams(time.Hour)})
	c := s.dialRawQuery(s.token("u1", time.Hour), "since=0")
	c.welcome()
	for m.reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	for _, task := range []string{"stream catch-up", "hub keep-alive", "stream check"} {
		if !strings.Contains(buf.String(), `"task":"`+task+`"`) {
			t.Errorf("no goroutine labelled task=%q in the profile", task)
		}
	}
}
