// Package tlslisten terminates TLS in front of Signal's HTTP server. The
// WebSocket hub writes to and polls its sockets' file descriptors directly
// (internal/hub: no goroutine per idle client), which a *tls.Conn does not
// have; so each TLS connection is handshaken here, then its plaintext
// travels over a Unix socket pair whose other end — a real descriptor,
// showing the TCP peer's address — is what the HTTP server accepts.
//
// The price, per TLS connection: two goroutines, two descriptors and the
// pair's kernel buffers, on top of the TLS state. At tens of thousands of
// connections, terminate TLS at a proxy instead (docs/operations.md#tls).
package tlslisten
