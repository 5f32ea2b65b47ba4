// Package e2e holds end-to-end tests: serve instances against a real
// PostgreSQL, the in-process Kafka-protocol broker and real WebSocket
// clients, driven like users and operators drive them.
package e2e
