// Package clientaddr finds a request's client address behind reverse
// proxies. Only a peer inside http.trusted_proxies is believed about who it
// forwards for: its X-Forwarded-For or Forwarded header is read from the
// right, past every hop that is itself a trusted proxy, and the first hop
// that is not becomes the client. Anyone else's headers are ignored, so a
// client cannot pick its own address to dodge a per-address limit.
package clientaddr
