// Package daemon is the composition root of `signalctl serve`. Run drives a
// server (server.go) through three phases: build makes the parts (pprof
// first, then the embedded broker in development, store, hub, relay,
// ingest, consumers, HTTP API), start runs them, and shutdown (lifecycle.go)
// stops them in order on the first signal, within shutdown.timeout:
// readiness fails, the consumer finishes and commits its batch and leaves
// the group, the HTTP server stops, WebSocket clients are closed with 1001
// over a short window, the relay unregisters the instance, the pool closes
// (Step* constants). What build acquired is then released, last first.
//
// Every long-lived goroutine it starts goes through one tracked helper
// (routines), so the first failure ends the run and a stop that overruns its
// deadline names what is still running.
package daemon
