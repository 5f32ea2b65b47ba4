// Package testkit starts the real parts of Signal for tests: a Kafka-protocol
// broker (kfake), serve instances on fresh PostgreSQL databases, producers,
// and WebSocket clients that record every frame. Tests import it; the
// product does not.
package testkit
