// Package hub is Signal's WebSocket server (lxzan/gws): it admits clients
// before the upgrade (connection limits), keeps rooms, and fans frames out
// to the clients of this process. A frame is encoded once and its bytes go
// to every receiving connection.
//
// Every byte a connection sends goes through its one outbound queue
// (out.go): one non-blocking write when nothing waits, else a flusher
// goroutine that exists only while something waits; gws's close frames
// join the same queue. What waits counts against a byte budget, past which
// the client is closed instead of slowing the others or growing memory.
// Idle connections are watched by one epoll instance (poller_linux.go)
// and hold no goroutine. Limits per client (actions, connections, token
// expiry) are in limits.go and the keep-alive loop.
//
// Stored-notification replay reaches the database through the History
// interface; the hub imports no other adapter.
package hub
