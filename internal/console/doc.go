// Package console owns the web console of a serve instance: a page, its
// script and its style sheet, embedded in the binary (no front-end build),
// served under /console/ by the HTTP API (see httpapi.Options.Console).
//
// The protocol is the JavaScript client package (clients/js), bundled into
// static/signal-client.js and committed, so a fresh machine builds the
// binary without Node; `make console-bundle` rebuilds it, and make test
// fails when it differs from what the package's sources build
// (internal/e2e, TestConsoleBundleIsCurrent).
//
// The page is plain HTML, CSS and JavaScript with no framework and no
// request to any other host. An operator pastes a token to open a WebSocket
// to the same host and watch rooms live, and may paste an API key (kept in
// the tab's sessionStorage, never in localStorage or a URL) to see
// GET /status every 5 s and send test broadcasts. It uses only the routes
// and frames of docs/protocol.md; it holds no credentials of its own.
package console
