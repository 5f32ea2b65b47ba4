package stream

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/event"
)

// newRunner is a Catchups over log with small pages, so tests cross pages.
func newRunner(log Source, pageSize int) *Catchups {
	return NewCatchups(Catchups{Source: log, PageSize: pageSize, MaxBehind: 1_000_000}, 2)
}

// The invariant, against a hostile delivery path: live frames of one
// stream are lost, repeated and reordered on the way (what other
// instances' pushes suffer when a relay listener is cut, or frames cross
// between instances), while changes keep committing. The connection must
// receive every position exactly once, in order. Break the repair (treat
// Repair as Send in deliver below, or let finish go live without checking
// seen) and positions go missing or come out of order.
func TestEveryChangeArrivesOnceAndInOrderWhateverTheLivePathLoses(t *testing.T) {
	for seed := range uint64(20) {
		everyChangeArrives(t, seed)
	}
}

func everyChangeArrives(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	log := &memLog{}
	conn := &fakeConn{subject: "u1"}
	k := newRunner(log, 7)
	var cur Cursor
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var catchups sync.WaitGroup
	startCatchup := func() {
		catchups.Add(1)
		go func() {
			defer catchups.Done()
			k.Run(ctx, Job{Conn: conn, Cursor: &cur, Recipient: "u1", Room: "r"})
		}()
	}
	// deliver is the hub's live path (Client.deliverStream).
	deliver := func(ch event.StreamChange) {
		conn.Lock()
		v := cur.Offer(ch.Pos)
		if v == Send {
			conn.Write(ch.Frame)
		}
		conn.Unlock()
		if v == Repair {
			startCatchup()
		}
	}
	conn.Lock()
	cur.Start(0, 0, false)
	conn.Unlock()

	const n = 600
	var late []event.StreamChange // frames delayed on the way
	for i := 0; i < n; i++ {
		ch := log.add() // committed
		switch r := rng.IntN(100); {
		case i == n-1: // the last one arrives (a lost last one is the check's job: below)
			deliver(ch)
		case r < 15: // lost
		case r < 30:
			late = append(late, ch)
		case r < 40:
			deliver(ch)
			deliver(ch) // repeated
		default:
			deliver(ch)
		}
		if len(late) > 0 && rng.IntN(4) == 0 {
			j := rng.IntN(len(late))
			deliver(late[j])
			late = append(late[:j], late[j+1:]...)
		}
	}
	for _, ch := range late {
		deliver(ch)
	}
	catchups.Wait()
	pos, _ := conn.positions()
	checkDense(t, pos, 0, n)
	if !cur.Live() {
		t.Errorf("seed %d: the cursor is not live at the end", seed)
	}
}

// A last change lost with nothing after it cannot reveal itself by a gap:
// the check (Hub.Resync) compares the cursor with the head and catches up.
func TestTheCheckFindsALostLastChange(t *testing.T) {
	log := &memLog{}
	conn := &fakeConn{}
	var cur Cursor
	cur.Start(0, 0, false)
	for range 5 {
		ch := log.add()
		conn.Lock()
		if cur.Offer(ch.Pos) == Send {
			conn.Write(ch.Frame)
		}
		conn.Unlock()
	}
	log.add() // committed, its push lost
	conn.Lock()
	behind := cur.Pos() < log.head().Pos && cur.StartCatchup()
	conn.Unlock()
	if !behind {
		t.Fatal("the check did not see the stream behind")
	}
	newRunner(log, 10).Run(context.Background(), Job{Conn: conn, Cursor: &cur, Recipient: "u1", Room: "r"})
	pos, system := conn.positions()
	checkDense(t, pos, 0, 6)
	if len(system) != 0 {
		t.Errorf("a silent repair sent %v", system)
	}
}

// A resuming client gets every change after its cursor, oldest first, in
// pages, then synced with the counts; nothing before its cursor.
func TestAResumeSendsEverythingAfterTheCursorThenSynced(t *testing.T) {
	log := &memLog{}
	for range 50 {
		log.add()
	}
	conn := &fakeConn{subject: "u1"}
	var cur Cursor
	cur.Start(12, 0, true)
	newRunner(log, 10).Run(context.Background(), Job{Conn: conn, Cursor: &cur, Recipient: "u1", Room: "r", Synced: true, Resume: true})
	pos, system := conn.positions()
	checkDense(t, pos, 12, 50)
	if len(system) != 1 || system[0] != event.TopicSynced {
		t.Fatalf("system frames %v, want one synced", system)
	}
	s, _ := conn.last(event.TopicSynced)
	if s.Pos != 50 || s.Counts == nil || s.Counts.Total != 50 || s.Room != "r" {
		t.Errorf("synced = %+v, want pos 50 with the head's counts", s)
	}
	if !cur.Live() || cur.Pos() != 50 {
		t.Errorf("cursor at %d (live %v)", cur.Pos(), cur.Live())
	}
}

func TestAResumePointThatCannotBeResumedGetsAReset(t *testing.T) {
	tests := []struct {
		name      string
		from      int64
		maxBehind int64
		gone      []int64
		reason    string
		resetPos  int64
		after     []int64 // changes sent after the reset
	}{
		{"beyond the head (the database lost changes)", 80, 0, nil, event.ResetAhead, 30, nil},
		{"too far behind", 2, 10, nil, event.ResetExpired, 30, nil},
		{"a change after the cursor is gone", 5, 0, []int64{8}, event.ResetExpired, 30, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &memLog{gone: map[int64]bool{}}
			for range 30 {
				log.add()
			}
			for _, p := range tt.gone {
				log.gone[p] = true
			}
			conn := &fakeConn{}
			var cur Cursor
			cur.Start(tt.from, 0, true)
			k := newRunner(log, 100)
			if tt.maxBehind > 0 {
				k.MaxBehind = tt.maxBehind
			}
			k.Run(context.Background(), Job{Conn: conn, Cursor: &cur, Recipient: "u1", Room: "r", Synced: true, Resume: true})
			s, ok := conn.last(event.TopicReset)
			if !ok || s.Reason != tt.reason || s.Pos != tt.resetPos {
				t.Fatalf("reset = %+v (%v), want reason %s at %d", s, ok, tt.reason, tt.resetPos)
			}
			if !cur.Live() || cur.Pos() != tt.resetPos {
				t.Errorf("after the reset the cursor is at %d (live %v)", cur.Pos(), cur.Live())
			}
			if _, synced := conn.last(event.TopicSynced); synced {
				t.Error("synced after a reset: the reset says it")
			}
		})
	}
}

// While the database is away a catch-up sends nothing and keeps the
// cursor behind, so no later frame can pass a change it has not sent;
// once it is back, everything arrives in order.
func TestACatchUpWaitsForTheDatabaseAndSendsNothingOutOfOrder(t *testing.T) {
	log := &memLog{}
	for range 10 {
		log.add()
	}
	log.failing.Store(true)
	conn := &fakeConn{}
	var cur Cursor
	cur.Start(3, 0, true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		newRunner(log, 4).Run(context.Background(), Job{Conn: conn, Cursor: &cur, Recipient: "u1", Room: "r", Synced: true, Resume: true})
	}()
	for log.reads.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	conn.Lock()
	v := cur.Offer(11) // a live frame meanwhile
	conn.Unlock()
	if v != Drop {
		t.Fatalf("a live frame during the outage was not dropped: %d", v)
	}
	if pos, _ := conn.positions(); len(pos) != 0 {
		t.Fatalf("sent %v while the database was away", pos)
	}
	log.add() // 11 commits
	log.failing.Store(false)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the catch-up did not finish after the database came back")
	}
	pos, _ := conn.positions()
	checkDense(t, pos, 3, 11)
}

func TestLeavingTheRoomEndsItsCatchUp(t *testing.T) {
	log := &memLog{}
	for range 100 {
		log.add()
	}
	conn := &fakeConn{}
	var cur Cursor
	cur.Start(0, 0, true)
	conn.Lock()
	cur.Stop()
	conn.Unlock()
	newRunner(log, 10).Run(context.Background(), Job{Conn: conn, Cursor: &cur, Recipient: "u1", Room: "r", Synced: true})
	if pos, system := conn.positions(); len(pos) > 0 || len(system) > 0 {
		t.Errorf("a stopped cursor's catch-up sent %v %v", pos, system)
	}
}

// A catch-up writes a chunk at a time, waiting for room in the client's
// byte budget before each: a client far behind never makes the server
// hold its backlog.
func TestACatchUpWaitsForRoomBetweenChunks(t *testing.T) {
	log := &memLog{}
	for range 40 {
		log.add()
	}
	conn := &fakeConn{}
	var cur Cursor
	cur.Start(0, 0, true)
	k := newRunner(log, 100)
	k.ChunkBytes = 100 // a few frames per chunk
	k.Run(context.Background(), Job{Conn: conn, Cursor: &cur, Recipient: "u1", Room: "r"})
	if w := conn.waits.Load(); w < 10 {
		t.Errorf("waited for room %d times for 40 frames in chunks of ~100 bytes", w)
	}
	pos, _ := conn.positions()
	checkDense(t, pos, 0, 40)
}

// hookLog runs after after a page was read and before it is returned: a
// change that commits (and is offered live) between a catch-up's read and
// its end.
type hookLog struct {
	*memLog
	after func()
}

func (h hookLog) After(ctx context.Context, r string, pos int64, limit int) (event.StreamPage, error) {
	page, err := h.memLog.After(ctx, r, pos, limit)
	if h.after != nil {
		h.after()
	}
	return page, err
}

// The seam between a catch-up and live frames: a change committed after
// the catch-up's last read, whose live frame was dropped because the
// cursor was still catching, must still be sent (the catch-up reads again
// instead of going live). Without that, it waits for a later change or the
// periodic check.
func TestAChangeOfferedDuringTheLastReadIsNotLost(t *testing.T) {
	log := &memLog{}
	for range 5 {
		log.add()
	}
	conn := &fakeConn{}
	var cur Cursor
	var once sync.Once
	src := hookLog{memLog: log, after: func() {
		once.Do(func() {
			ch := log.add() // 6 commits after the read…
			conn.Lock()
			if v := cur.Offer(ch.Pos); v != Drop { // …and its live frame comes while catching
				t.Errorf("Offer while catching = %d", v)
			}
			conn.Unlock()
		})
	}}
	cur.Start(0, 0, true)
	newRunner(src, 100).Run(context.Background(), Job{Conn: conn, Cursor: &cur, Recipient: "u1", Room: "r", Synced: true})
	pos, _ := conn.positions()
	checkDense(t, pos, 0, 6)
	if s, _ := conn.last(event.TopicSynced); s.Pos != 6 {
		t.Errorf("synced at %d, want 6", s.Pos)
	}
}
