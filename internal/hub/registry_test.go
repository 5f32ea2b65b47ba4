package hub

import (
	"testing"
	"time"
)

// The registry lock is not held while frames are written: a broadcast
// held up by one client (its queue's lock taken, as by a flush in
// progress) must not hold up the connections that arrive meanwhile.
// Before, a register waited for the whole broadcast.
func TestARegisterDoesNotWaitForABroadcast(t *testing.T) {
	for _, tt := range []struct {
		name string
		send func(h *Hub)
	}{
		{"broadcast", func(h *Hub) { h.Broadcast([]byte(`{"topic":"t","data":{}}`)) }},
		{"room", func(h *Hub) {
			h.Deliver([]Delivery{{Room: "signal/notification/a", Frame: []byte(`{"topic":"t","data":{}}`)}})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Options{})
			a := s.dialRaw(s.token("a", time.Minute), dialOpts{})
			blocked := s.client(a.welcome())
			blocked.out.mu.Lock()
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				tt.send(s.h)
			}()
			time.Sleep(100 * time.Millisecond) // the send is waiting for a's lock
			arrived := make(chan struct{})
			go func() {
				defer close(arrived)
				b := s.dialRaw(s.token("b", time.Minute), dialOpts{})
				b.welcome()
			}()
			select {
			case <-arrived:
			case <-time.After(5 * time.Second):
				t.Error("a new connection waited for a send held up by another client")
			}
			blocked.out.mu.Unlock()
			<-sent
			<-arrived
		})
	}
}
