// Package ingest turns a batch of Kafka records into stored notifications:
// validate and render each message, resolve its recipients (group members
// and preferences, one round trip), insert one row per recipient that does
// not mute it — in one transaction, or in several of at most MaxRowsPerTx
// rows for a batch with more (an event to a big organizer, plan.go) — store
// what cannot be used as dead letters, and hand each transaction's rows to
// the Pusher as it commits.
//
// A record that the database itself rejects is isolated by splitting the
// batch, so one poison message cannot stall a partition. Transient failures
// are returned to the caller (the consumer), which retries the batch; a
// retry resumes at the transaction that failed.
//
// MemberFeed applies the optional members.topic (membership changes) the
// same way: one transaction per batch, bad records as dead letters.
package ingest
