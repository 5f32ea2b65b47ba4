package relay

import (
	"context"
	"time"

	"github.com/signal-notify/signal/internal/hub"
	"github.com/signal-notify/signal/internal/store"
)

// Connected registers a new local client; the channel closes once the
// registration is committed (the hub sends the welcome then).
func (r *Relay) Connected(c hub.ClientInfo) <-chan struct{} {
	done := make(chan struct{})
	row := store.ClientRow{ID: c.ID, InstanceID: r.o.InstanceID, Subject: c.Subject, Rooms: c.Rooms, ConnectedAt: c.ConnectedSince}
	r.mu.Lock()
	r.setRoomsLocked(row)
	r.waiters = append(r.waiters, done)
	r.mu.Unlock()
	r.kick()
	return done
}

// RoomsChanged records a client's new set of rooms; the channel closes
// once that is committed.
func (r *Relay) RoomsChanged(c hub.ClientInfo) <-chan struct{} {
	done := make(chan struct{})
	r.mu.Lock()
	if old, ok := r.clientRooms[c.ID]; ok {
		old.Rooms = c.Rooms
		r.setRoomsLocked(old)
	}
	r.waiters = append(r.waiters, done)
	r.mu.Unlock()
	r.kick()
	return done
}

// Disconnected forgets a local client.
func (r *Relay) Disconnected(clientID string) {
	r.mu.Lock()
	if old, ok := r.clientRooms[clientID]; ok {
		for _, room := range old.Rooms {
			r.unrefLocked(room)
		}
		delete(r.clientRooms, clientID)
		delete(r.pending.upsert, clientID)
		r.pending.delete[clientID] = true
	}
	r.mu.Unlock()
	r.kick()
}

func (r *Relay) setRoomsLocked(row store.ClientRow) {
	if old, ok := r.clientRooms[row.ID]; ok {
		for _, room := range old.Rooms {
			r.unrefLocked(room)
		}
	}
	for _, room := range row.Rooms {
		r.roomCount[room]++
		if r.roomCount[room] == 1 {
			r.pending.rooms[room] = true
		}
	}
	r.clientRooms[row.ID] = row
	r.pending.upsert[row.ID] = row
	delete(r.pending.delete, row.ID)
}

func (r *Relay) unrefLocked(room string) {
	r.roomCount[room]--
	if r.roomCount[room] <= 0 {
		delete(r.roomCount, room)
		r.pending.rooms[room] = false
	}
}

func (r *Relay) requestResync() {
	r.mu.Lock()
	r.resync = true
	r.mu.Unlock()
	r.kick()
}

func (r *Relay) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// flushLoop writes presence changes as they come: all changes gathered
// while one write runs go into the next, so a burst of connections costs a
// few transactions, not one each.
func (r *Relay) flushLoop(ctx context.Context) {
	wait := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		for {
			r.mu.Lock()
			ch, replace, waiters := r.takeLocked()
			r.mu.Unlock()
			if ch.Empty() && !replace && len(waiters) == 0 {
				break
			}
			if err := r.o.Store.ApplyPresence(ctx, r.o.InstanceID, ch, replace); err != nil {
				if ctx.Err() != nil {
					return
				}
				r.log.Warn("presence update failed, retrying", "err", err, "wait", wait.String())
				r.mu.Lock()
				r.resync = true // the next write restates everything
				r.waiters = append(waiters, r.waiters...)
				r.mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = min(wait*2, 5*time.Second)
				continue
			}
			wait = 50 * time.Millisecond
			for _, w := range waiters {
				close(w)
			}
			if replace && r.gapAfterFlush.CompareAndSwap(true, false) {
				r.gap(ctx)
			}
		}
	}
}

// takeLocked returns the pending changes (everything, with replace, after
// a resync request) and resets them.
func (r *Relay) takeLocked() (store.PresenceChange, bool, []chan struct{}) {
	var ch store.PresenceChange
	replace := r.resync
	if replace {
		for _, row := range r.clientRooms {
			ch.Upsert = append(ch.Upsert, row)
		}
		for room := range r.roomCount {
			ch.RoomsOpened = append(ch.RoomsOpened, room)
		}
	} else {
		for _, row := range r.pending.upsert {
			ch.Upsert = append(ch.Upsert, row)
		}
		for id := range r.pending.delete {
			ch.Delete = append(ch.Delete, id)
		}
		for room, open := range r.pending.rooms {
			if open {
				ch.RoomsOpened = append(ch.RoomsOpened, room)
			} else {
				ch.RoomsClosed = append(ch.RoomsClosed, room)
			}
		}
	}
	r.resync = false
	r.pending = newChanges()
	waiters := r.waiters
	r.waiters = nil
	return ch, replace, waiters
}
