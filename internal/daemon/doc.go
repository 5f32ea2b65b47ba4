// Package daemon is the composition root of `signalctl serve`: it builds the
// parts (pprof first, then the embedded broker in development, store, hub,
// ingest, consumer, HTTP API), runs them, and shuts them down in order on the
// first signal, within shutdown.timeout: readiness fails, the consumer
// finishes and commits its batch and leaves the group, the HTTP server stops,
// WebSocket clients are closed with 1001 over a short window, the relay
// unregisters the instance, the pool closes (Step* constants).
//
// Every long-lived goroutine it starts goes through one tracked helper
// (routines), so the first failure ends the run and a stop that overruns its
// deadline names what is still running.
package daemon
