package stream

import (
	"context"
	"log/slog"
	"time"

	"github.com/signal-notify/signal/internal/event"
)

// Source reads streams from the database.
type Source interface {
	// After returns the recipient's changes after position pos, oldest
	// first, at most limit, and where the stream stood when they were read.
	After(ctx context.Context, recipient string, pos int64, limit int) (event.StreamPage, error)
}

// Conn is the connection a catch-up writes to.
type Conn interface {
	// Lock and Unlock guard the connection's cursors and the order of its
	// writes (live frames are written under the same lock).
	Lock()
	Unlock()
	// Write queues a frame; it is called under Lock. False once the
	// connection is closed.
	Write(frame []byte) bool
	// WaitRoom returns once n more bytes may be queued for the connection
	// within its byte budget, or an error when ctx ends or the connection
	// closes. It is called without the lock.
	WaitRoom(ctx context.Context, n int) error
	// Subject is the token subject whose connections share the replay rate.
	Subject() string
}

// Job is one catch-up of one stream on one connection.
type Job struct {
	Conn      Conn
	Cursor    *Cursor // catching, guarded by Conn's lock
	Recipient string
	Room      string
	// Synced: a connect or a join with since is being served, and ends with
	// signal/system/synced; without it the catch-up is a silent repair.
	Synced bool
	// Resume: the first page checks that the client's resume point is
	// within reach (not beyond the head, not more than MaxBehind behind).
	Resume bool
}

// Catchups runs catch-ups: paged reads of the database, paced by each
// client's byte budget and its subject's replay rate, with a bound on the
// reads running at once.
type Catchups struct {
	Source Source
	Budget *Budget // nil: no rate
	// PageSize is how many changes one read returns (default 200).
	PageSize int
	// MaxBehind: a resume point further behind gets a reset (default
	// 50,000).
	MaxBehind int64
	// ChunkBytes is how many bytes are written between two waits for room
	// in the client's budget (default 64 KiB).
	ChunkBytes int
	Logger     *slog.Logger
	// OnRead is called after each page read (metrics), with the changes it
	// returned and how long it took.
	OnRead func(changes int, took time.Duration)

	slots chan struct{}
}

// DefaultMaxBehind is Catchups.MaxBehind when not set.
const DefaultMaxBehind = 50_000

// NewCatchups returns a runner that makes at most reads database reads at
// once.
func NewCatchups(c Catchups, reads int) *Catchups {
	if c.PageSize <= 0 {
		c.PageSize = 200
	}
	if c.MaxBehind <= 0 {
		c.MaxBehind = DefaultMaxBehind
	}
	if c.ChunkBytes <= 0 {
		c.ChunkBytes = 64 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.slots = make(chan struct{}, max(reads, 1))
	return &c
}

// Run sends the stream's changes after the cursor until the stream is live
// again (or ctx ends, or the connection closes). While it runs the cursor
// is catching: live frames are dropped and remembered, and read back here.
func (k *Catchups) Run(ctx context.Context, j Job) {
	wait := 100 * time.Millisecond
	checked := !j.Resume // the resume point is checked on the first page
	for ctx.Err() == nil {
		j.Conn.Lock()
		from := j.Cursor.pos
		j.Conn.Unlock()
		page, err := k.read(ctx, j.Recipient, from)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// The database is away: stay behind (nothing is sent out of
			// order meanwhile) and try again.
			k.Logger.Warn("stream catch-up cannot read the database, retrying", "room", j.Room, "err", err, "wait", wait.String())
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
			continue
		}
		wait = 100 * time.Millisecond
		reason := k.unreachable(from, page.Head, checked)
		checked = true
		if reason == "" {
			var st status
			if st, reason = k.send(ctx, &j, page); st != more {
				return
			}
		}
		if reason != "" {
			if !k.reset(&j, page.Head, reason) {
				return
			}
			j.Synced = false // the reset says as much
		}
	}
}

// read reads one page, holding one of the slots.
func (k *Catchups) read(ctx context.Context, recipient string, from int64) (event.StreamPage, error) {
	select {
	case k.slots <- struct{}{}:
	case <-ctx.Done():
		return event.StreamPage{}, ctx.Err()
	}
	defer func() { <-k.slots }()
	start := time.Now()
	page, err := k.Source.After(ctx, recipient, from, k.PageSize)
	if err == nil && k.OnRead != nil {
		k.OnRead(len(page.Changes), time.Since(start))
	}
	return page, err
}

// unreachable says why a stream cannot resume from pos, or "".
func (k *Catchups) unreachable(from int64, head event.StreamHead, checked bool) string {
	switch {
	case from > head.Pos:
		return event.ResetAhead // the database lost changes the client has
	case !checked && from >= head.Floor && head.Pos-from > k.MaxBehind:
		return event.ResetExpired
	}
	return ""
}

// status is how far a send got.
type status uint8

const (
	more   status = iota // read the next page
	isLive               // the stream is live
	closed               // the connection closed, or ctx ended
)

// send writes a page's changes in order, waiting for room in the client's
// budget and for its subject's rate between chunks. The stream goes live
// when the page reached the head and nothing newer came meanwhile. A hole
// (a change before one of the page's is gone) is returned as a reset
// reason.
func (k *Catchups) send(ctx context.Context, j *Job, page event.StreamPage) (status, string) {
	changes := page.Changes
	for len(changes) > 0 {
		n, bytes := 0, 0
		for n < len(changes) && (n == 0 || bytes+len(changes[n].Frame) <= k.ChunkBytes) {
			bytes += len(changes[n].Frame)
			n++
		}
		if k.Budget != nil {
			if err := k.Budget.Wait(ctx, j.Conn.Subject(), n); err != nil {
				return closed, ""
			}
		}
		if err := j.Conn.WaitRoom(ctx, bytes); err != nil {
			return closed, ""
		}
		j.Conn.Lock()
		if j.Cursor.Stopped() {
			j.Conn.Unlock()
			return closed, ""
		}
		for _, ch := range changes[:n] {
			take, hole := j.Cursor.accept(ch.Pos)
			if hole {
				// A change before this one is gone (retention removed it):
				// applying changes cannot make the client converge.
				j.Conn.Unlock()
				return more, event.ResetExpired
			}
			if take && !j.Conn.Write(ch.Frame) {
				j.Conn.Unlock()
				return closed, ""
			}
		}
		j.Conn.Unlock()
		changes = changes[n:]
	}
	if len(page.Changes) == k.PageSize {
		return more, ""
	}
	j.Conn.Lock()
	defer j.Conn.Unlock()
	if j.Cursor.Stopped() {
		return closed, ""
	}
	if !j.Cursor.finish(page.Head.Pos) {
		return more, "" // a newer change came meanwhile: read again
	}
	if j.Synced && !j.Conn.Write(SyncedFrame(j.Room, event.StreamHead{Pos: j.Cursor.pos, Counts: countsAt(page.Head, j.Cursor.pos)})) {
		return closed, ""
	}
	return isLive, ""
}

// reset tells the client its cursor cannot be resumed and moves it to the
// head; false when the connection is closed.
func (k *Catchups) reset(j *Job, head event.StreamHead, reason string) bool {
	j.Conn.Lock()
	defer j.Conn.Unlock()
	if j.Cursor.Stopped() {
		return false
	}
	j.Cursor.reset(head.Pos, head.Floor)
	return j.Conn.Write(ResetFrame(j.Room, head, reason))
}

// countsAt returns the head's counts when pos is the head.
func countsAt(head event.StreamHead, pos int64) *event.Counts {
	if pos == head.Pos {
		return head.Counts
	}
	return nil
}

// frame encodes a system frame of the stream.
func frame(topic string, data event.Synced) []byte {
	b, err := event.MarshalFrame(topic, "", data)
	if err != nil {
		panic(err) // a struct of strings and numbers always encodes
	}
	return b
}

// SyncedFrame is the signal/system/synced frame for a stream that starts
// live at head (a connect or join without a resume point).
func SyncedFrame(room string, head event.StreamHead) []byte {
	return frame(event.TopicSynced, event.Synced{Room: room, Pos: head.Pos, Counts: head.Counts})
}

// ResetFrame is the signal/system/reset frame for a stream that cannot
// resume and starts at head.
func ResetFrame(room string, head event.StreamHead, reason string) []byte {
	return frame(event.TopicReset, event.Synced{Room: room, Pos: head.Pos, Counts: head.Counts, Reason: reason})
}
