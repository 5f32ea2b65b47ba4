// Package daemon is the composition root of `signalctl serve`: it builds the
// parts (embedded broker in development, store, hub, ingest, consumer, HTTP
// API), runs them, and shuts them down in order on the first signal:
// readiness fails, the consumer finishes and commits its batch and leaves
// the group, the HTTP server stops, WebSocket clients are closed with 1001
// over a short window, the pool closes.
package daemon
