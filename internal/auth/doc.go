// Package auth verifies the two credentials Signal accepts: HS256 JWTs held
// by WebSocket and inbox clients, and API keys held by calling services. It
// also mints tokens for `signalctl token`.
package auth
