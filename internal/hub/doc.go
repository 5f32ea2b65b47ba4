// Package hub is Signal's WebSocket server (lxzan/gws): it authenticates
// clients before the upgrade, keeps rooms, and fans frames out to the
// clients of this process. A frame is encoded once and its bytes are queued
// to every receiving connection; no lock is held while writing, and each
// connection's queue is bounded so a client that does not read is dropped
// instead of slowing the others.
//
// Stored-notification replay reaches the database through the History
// interface; the hub imports no other adapter.
package hub
