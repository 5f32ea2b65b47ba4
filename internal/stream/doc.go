// Package stream owns Signal's sync stream: the one ordered, resumable
// stream of each recipient's inbox changes, and the promise that every
// device shows what the database holds.
//
// # The invariant
//
// A client that resumes from the position of the last change it applied
// receives every later committed change of its inbox, in order, whatever
// happened in between (instance crash, rolling restart, rebalance,
// PostgreSQL restart, relay loss). On one connection the server never sends
// a change unless it sent every earlier one (or the client resumed after
// it): no client's cursor passes a committed change it was not sent.
//
// # How it holds
//
//  1. Positions are dense per recipient and commit in order. Every change
//     (a created notification, a state change) takes the next position of
//     its recipient's stream in the transaction that makes it, holding the
//     recipient's state row until it commits (internal/store, stream.go).
//     So when a reader sees position n committed, it sees 1…n.
//  2. A connection keeps a Cursor per stream: the last position sent. A
//     live frame is sent only when it is the cursor's next position; one
//     at or below it is a repeat and dropped; one beyond it means a change
//     did not arrive (another instance's push lost, a relay listener cut,
//     frames crossing between instances), and the stream goes back to the
//     database: a catch-up (Catchup) reads the changes after the cursor in
//     pages, oldest first, and sends them in order. While it runs, live
//     frames of that stream are dropped and only their highest position is
//     remembered; the catch-up ends, under the connection's lock, only once
//     it has sent everything up to that position and up to the head it read.
//     Nothing is held in memory for a stream behind: the database is the
//     buffer.
//  3. A cursor starts from a head read after the connection's registration
//     is known to the other instances, with a lock that waits for writers
//     in flight (store.Heads). A writer looks up the instances holding the
//     recipient's room only after it took its position: it either sees the
//     registration, and pushes to this instance, or it took its position
//     before the read, which then waited for it and covers it.
//  4. When an instance may have missed pushes it cannot detect by a later
//     change (its relay listener was cut; it was swept as dead), it reads
//     the heads of all its streams again, the same way, and catches up
//     every stream that is behind (Resync); a periodic check does the same
//     without the lock, in case of anything else.
//  5. A cursor that cannot resume — older than what is kept, unknown, or
//     beyond the head (the database lost changes the client has) — gets a
//     reset: the client reloads its inbox, and the stream goes on from the
//     head.
//
// Live delivery stays one comparison per frame and client (Cursor.Offer).
// A catch-up costs one indexed read per page, paced by the client's byte
// budget, its subject's share of the replay rate (Budget), and a bound on
// catch-ups running at once (Catchups); a client already up to date costs
// none.
//
// The client side (what a client may rely on, what it must do) is
// docs/sync-stream.md; the reasoning and its measurements are in
// docs/design.md, "The sync stream".
package stream
