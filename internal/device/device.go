package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lxzan/gws"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/store"
)

// SyncClient is a device that follows docs/sync-stream.md to the letter:
// it keeps a cursor, applies each change by position, reconnects with
// ?since=<cursor>, reloads on reset, and keeps the inbox it would show. It
// counts every breach of the protocol (a skipped position, a frame out of
// order), so a test can assert there was none, and compares what it shows
// with the database (Verify). It is the reference client of the e2e tests
// and the bench.
type SyncClient struct {
	Recipient string
	Token     string
	// URL picks the instance of the next connection (an http:// base).
	URL func() string
	// Legacy makes it a client of the protocol before the sync stream
	// (builds without positions): it resumes with ?since=<the last created
	// notification's id> and applies frames as they come. The bench runs
	// the previous build with it; Verify then compares notifications and
	// states only (no counts, no cursor).
	Legacy bool
	// Observe, when set, is called with every frame received, outside the
	// client's lock (the bench measures latency with it).
	Observe func(topic string, data []byte)

	mu      sync.Mutex
	lastID  string // Legacy: the last created notification's id
	cursor  int64
	started bool // a first synced (or reset) gave the cursor
	// reload: a reset (or the first start) came; the session ends and the
	// inbox is loaded from REST before the next one resumes from cursor.
	reload bool
	items  map[string]*SyncItem
	counts *event.Counts
	// countsAt is the position the counts are at: a catch-up sends most of
	// its changes without counts, and ends with synced, which has them.
	countsAt int64
	stats    SyncStats
	synced   chan struct{} // closed at the synced (or reset) of the current session
	// live: connected and synced (legacy: connected); a bench measures how
	// long a fault keeps devices from being live.
	live bool
}

// SyncItem is one notification as the device shows it.
type SyncItem struct {
	Pos                           int64
	Read, Seen, Archived, Deleted bool
}

// SyncStats is what a device saw.
type SyncStats struct {
	Sessions int // connections made
	Refused  int // connections that failed (refused, or the server away)
	Changes  int // change frames applied
	Repeats  int // change frames at or below the cursor (allowed, dropped)
	// Gaps counts change frames beyond cursor + 1: the server broke its
	// promise (the device resyncs, but a test must see none).
	Gaps   int
	Resets int
	Closes map[int]int // close codes the server sent
	Errors map[string]int
}

// New makes a device of recipient with its token.
func New(recipient, token string, url func() string) *SyncClient {
	return &SyncClient{Recipient: recipient, Token: token, URL: url, items: map[string]*SyncItem{},
		stats: SyncStats{Closes: map[int]int{}, Errors: map[string]int{}}}
}

// Session connects once (with ?since= once it has a cursor), applies
// what comes for d — at least until the stream is synced, up to max —
// and then drops the connection without a close frame, as a device that
// loses its network does. An error means it could not connect.
func (s *SyncClient) Session(ctx context.Context, d, max time.Duration) error {
	if err := s.reloadIfAsked(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	u := strings.Replace(s.URL(), "http", "ws", 1) + "/socket/websocket"
	switch {
	case s.Legacy && s.lastID != "":
		u += "?since=" + s.lastID
	case !s.Legacy && s.started:
		u += "?since=" + strconv.FormatInt(s.cursor, 10)
	}
	s.synced = make(chan struct{})
	synced := s.synced
	s.mu.Unlock()
	h := http.Header{"Authorization": {"Bearer " + s.Token}}
	handler := &syncHandler{s: s, done: make(chan struct{})}
	conn, _, err := gws.NewClient(handler, &gws.ClientOption{Addr: u, RequestHeader: h, HandshakeTimeout: 5 * time.Second})
	if err != nil {
		s.mu.Lock()
		s.stats.Refused++
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	s.stats.Sessions++
	s.mu.Unlock()
	go conn.ReadLoop()
	defer func() {
		conn.NetConn().Close()
		<-handler.done
		s.mu.Lock()
		s.live = false
		s.mu.Unlock()
	}()
	minEnd, maxEnd := time.NewTimer(d), time.NewTimer(max)
	defer minEnd.Stop()
	defer maxEnd.Stop()
	for isSynced := s.Legacy; ; { // a legacy server sends no synced
		select {
		case <-ctx.Done():
			return nil
		case <-handler.done:
			return nil // closed by the server: reconnect
		case <-maxEnd.C:
			return nil
		case <-synced:
			isSynced, synced = true, nil
			s.mu.Lock()
			reload := s.reload
			s.mu.Unlock()
			if reload {
				return nil // load the inbox, then resume from the reset's position
			}
		case <-minEnd.C:
			if isSynced {
				return nil
			}
			minEnd.Reset(10 * time.Millisecond)
		}
	}
}

// Run keeps reconnecting, each session lasting about every (at least until
// synced), until ctx ends. Failed connections are retried after a short
// wait.
func (s *SyncClient) Run(ctx context.Context, every time.Duration) {
	for ctx.Err() == nil {
		if err := s.Session(ctx, every, 30*time.Second); err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// reloadIfAsked loads the inbox from REST after a reset or the first
// start: the next session resumes from the reset's position (at or below
// the snapshot), and its changes apply on top (they are idempotent).
func (s *SyncClient) reloadIfAsked(ctx context.Context) error {
	s.mu.Lock()
	reload := s.reload
	s.mu.Unlock()
	if !reload {
		return nil
	}
	items, err := s.load(ctx, s.URL())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.items, s.reload = items, false
	s.mu.Unlock()
	return nil
}

// Live reports whether the device is connected and synced now (a legacy
// device: connected and welcomed).
func (s *SyncClient) Live() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}

// Stats returns what the device saw so far.
func (s *SyncClient) Stats() SyncStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	return st
}

// Cursor is the position of the last change applied.
func (s *SyncClient) Cursor() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor
}

// Settled reports whether the device is at pos with counts of that
// position (a catch-up that reached pos has also sent its synced).
func (s *SyncClient) Settled(pos int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Legacy {
		return true
	}
	return s.cursor == pos && s.countsAt == pos && s.counts != nil
}

type syncHandler struct {
	gws.BuiltinEventHandler
	s    *SyncClient
	done chan struct{}
}

func (h *syncHandler) OnClose(_ *gws.Conn, err error) {
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		h.s.mu.Lock()
		h.s.stats.Closes[int(ce.Code)]++
		h.s.mu.Unlock()
	}
	close(h.done)
}

func (h *syncHandler) OnMessage(_ *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	h.s.apply(msg.Bytes())
}

// applyLegacy applies a frame of a server without positions: notifications
// by id, state changes as they come (a catch-up sends notifications only).
func (s *SyncClient) applyLegacy(f syncFrame) {
	switch f.Topic {
	case event.TopicNotificationCreated:
		var n event.Notification
		_ = json.Unmarshal(f.Data, &n)
		if s.items[n.ID] == nil {
			s.items[n.ID] = &SyncItem{Read: n.IsRead, Seen: n.IsRead}
			s.stats.Changes++
		} else {
			s.stats.Repeats++
		}
		s.lastID = n.ID
	case event.TopicNotificationUpdated:
		var c event.StateChange
		_ = json.Unmarshal(f.Data, &c)
		targets := c.IDs
		if c.All {
			targets = nil
			for id := range s.items {
				targets = append(targets, id)
			}
		}
		for _, id := range targets {
			if it := s.items[id]; it != nil {
				applyStates(it, c)
			}
		}
		s.stats.Changes++
	}
}

// applyStates sets the states a change names.
func applyStates(it *SyncItem, c event.StateChange) {
	if c.IsRead != nil {
		it.Read = *c.IsRead
	}
	if c.IsSeen != nil {
		it.Seen = *c.IsSeen
	}
	if c.IsArchived != nil {
		it.Archived = *c.IsArchived
	}
	if c.IsDeleted != nil {
		it.Deleted = *c.IsDeleted
	}
}

// syncFrame is a server frame as the device reads it.
type syncFrame struct {
	Topic  string          `json:"topic"`
	Pos    int64           `json:"pos"`
	Counts *event.Counts   `json:"counts"`
	Data   json.RawMessage `json:"data"`
}

// apply takes one frame of the stream in: a sync or reset, an error, or
// the next change (out of order ones are counted and skipped).
func (s *SyncClient) apply(b []byte) {
	var f syncFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return
	}
	if s.Observe != nil {
		s.Observe(f.Topic, f.Data)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Legacy {
		s.live = true // a legacy server sends no synced: its welcome says it
		s.applyLegacy(f)
		return
	}
	switch f.Topic {
	case event.TopicSynced, event.TopicReset:
		s.applySynced(f)
		return
	case event.TopicError:
		var e struct{ Code string }
		_ = json.Unmarshal(f.Data, &e)
		s.stats.Errors[e.Code]++
		return
	}
	if f.Pos == 0 || !s.started || s.reload {
		return // not a change of the stream, or one before the inbox is loaded: it comes again
	}
	switch {
	case f.Pos <= s.cursor:
		s.stats.Repeats++
		return
	case f.Pos > s.cursor+1:
		s.stats.Gaps++
	}
	s.cursor = f.Pos
	s.stats.Changes++
	if f.Counts != nil {
		c := *f.Counts
		s.counts, s.countsAt = &c, f.Pos
	}
	s.applyChange(f)
}

// applySynced takes a synced or reset frame in; s.mu is held.
func (s *SyncClient) applySynced(f syncFrame) {
	var d event.Synced
	_ = json.Unmarshal(f.Data, &d)
	if f.Topic == event.TopicReset || !s.started {
		// Reset (or a first start): what the device shows is reloaded
		// from REST by the test (Reload); the stream goes on from pos.
		if f.Topic == event.TopicReset {
			s.stats.Resets++
		}
		s.items = map[string]*SyncItem{}
		s.cursor, s.started, s.reload = d.Pos, true, true
	}
	if d.Counts != nil {
		c := *d.Counts
		s.counts, s.countsAt = &c, d.Pos
	}
	if s.synced != nil {
		close(s.synced)
		s.synced = nil
	}
	s.live = true
}

// applyChange applies the next change of the stream to the items; s.mu
// is held.
func (s *SyncClient) applyChange(f syncFrame) {
	switch f.Topic {
	case event.TopicNotificationCreated:
		var n event.Notification
		_ = json.Unmarshal(f.Data, &n)
		if s.items[n.ID] == nil {
			s.items[n.ID] = &SyncItem{Pos: f.Pos, Read: n.IsRead, Seen: n.IsRead}
		}
	case event.TopicNotificationUpdated:
		var c event.StateChange
		_ = json.Unmarshal(f.Data, &c)
		if c.All {
			for _, it := range s.items {
				if it.Pos < f.Pos {
					applyStates(it, c)
				}
			}
			return
		}
		for _, id := range c.IDs {
			if it := s.items[id]; it != nil {
				applyStates(it, c)
			}
		}
	case event.TopicNotificationRemoved:
		var r event.Removed
		_ = json.Unmarshal(f.Data, &r)
		for _, id := range r.IDs {
			delete(s.items, id)
		}
	}
}

// Shown returns the notifications the device shows (not deleted), by id.
func (s *SyncClient) Shown() map[string]SyncItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]SyncItem{}
	for id, it := range s.items {
		if !it.Deleted {
			out[id] = *it
		}
	}
	return out
}

// Counts are the last counts the stream gave.
func (s *SyncClient) Counts() *event.Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Verify compares what the device shows — every notification and its
// states, and the counts — with the database, and describes the first
// differences ("" when equal). The device must be caught up (its cursor
// at the stream's head) for them to be equal.
func (s *SyncClient) Verify(ctx context.Context, st *store.Store) (string, error) {
	want, err := s.stored(ctx, st)
	if err != nil {
		return "", err
	}
	var counts event.Counts
	var pos int64
	if !s.Legacy { // a legacy database has no stream to read counts from
		if counts, pos, err = st.Counts(ctx, s.Recipient); err != nil {
			return "", err
		}
	}
	diffs := itemDiffs(s.Shown(), want)
	if c := s.Counts(); !s.Legacy && (c == nil || *c != counts) {
		diffs = append(diffs, fmt.Sprintf("counts %+v, stored %+v", c, counts))
	}
	if cur := s.Cursor(); !s.Legacy && cur != pos {
		diffs = append(diffs, fmt.Sprintf("cursor %d, stream at %d", cur, pos))
	}
	sort.Strings(diffs)
	if len(diffs) == 0 {
		return "", nil
	}
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("… %d differences in all", len(diffs)))
	}
	return fmt.Sprint(diffs), nil
}

// stored reads every notification of the recipient from the database, by
// id, as the device should show it (no positions for a legacy server,
// whose frames have none).
func (s *SyncClient) stored(ctx context.Context, st *store.Store) (map[string]SyncItem, error) {
	want := map[string]SyncItem{}
	var before int64
	for {
		rows, err := st.ListNotifications(ctx, s.Recipient, event.InboxFilter{Archived: event.ArchivedAny}, 100, before)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			it := SyncItem{Pos: r.Seq, Read: r.IsRead, Seen: r.IsSeen, Archived: r.IsArchived}
			if s.Legacy {
				it.Pos = 0
			}
			want[r.ID.String()] = it
		}
		if len(rows) < 100 {
			return want, nil
		}
		before = rows[len(rows)-1].Seq
	}
}

// itemDiffs describes how the items shown differ from those stored.
func itemDiffs(got, want map[string]SyncItem) []string {
	var diffs []string
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %s (pos %d)", id, w.Pos))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%s shown as %+v, stored as %+v", id, g, w))
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("shows %s (pos %d), which is not in the inbox", id, g.Pos))
		}
	}
	return diffs
}

// load reads the inbox and the archive as REST serves them.
func (s *SyncClient) load(ctx context.Context, base string) (map[string]*SyncItem, error) {
	items := map[string]*SyncItem{}
	for _, archived := range []string{"false", "true"} {
		for cursor := ""; ; {
			q := url.Values{"limit": {"100"}, "archived": {archived}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/notifications?"+q.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+s.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return nil, err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var page struct {
				Items      []event.InboxItem `json:"items"`
				NextCursor *string           `json:"nextCursor"`
			}
			if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &page) != nil {
				return nil, fmt.Errorf("load the inbox: %d %s", resp.StatusCode, b)
			}
			for _, it := range page.Items {
				items[it.ID] = &SyncItem{Pos: it.Pos, Read: it.IsRead, Seen: it.IsSeen, Archived: it.IsArchived}
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
	}
	return items, nil
}
