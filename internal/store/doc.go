// Package store owns Signal's PostgreSQL access: the pgx pool, the embedded
// migrations, the idempotent batch insert of notifications, inbox queries,
// memberships, recipient preferences and dead letters.
//
// Every value reaches SQL as a parameter; no query is built from input.
// It imports event (the domain) and nothing else of Signal.
package store
