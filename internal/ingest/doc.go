// Package ingest turns a batch of Kafka records into stored notifications:
// validate and render each message, resolve its recipients, insert one row
// per recipient in a single transaction, store what cannot be used as dead
// letters, and only after the commit hand the rows to the Pusher.
//
// A record that the database itself rejects is isolated by splitting the
// batch, so one poison message cannot stall a partition. Transient failures
// are returned to the caller (the consumer), which retries the whole batch.
package ingest
