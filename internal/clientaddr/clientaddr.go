package clientaddr

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver knows the trusted proxies.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver trusting the given prefixes; none: every peer is
// the client.
func New(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: trusted}
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the client address of a request whose TCP peer is
// remoteAddr ("host:port") and whose headers are h. ok is false when the
// peer is no address (then the caller keeps what it has).
func (r *Resolver) Client(remoteAddr string, h http.Header) (netip.Addr, bool) {
	peer, ok := parseHost(remoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if len(r.trusted) == 0 || !r.isTrusted(peer) {
		return peer, true
	}
	// Forwarded (RFC 7239) when the proxy sends it, else X-Forwarded-For;
	// either way the hops in order, the nearest last.
	hops := forwardedFor(h.Values("Forwarded"))
	if hops == nil {
		hops = xForwardedFor(h.Values("X-Forwarded-For"))
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHost(hops[i])
		if !ok {
			// "unknown", an obfuscated name or garbage: the trusted hop
			// that wrote it is as far as anything can be believed.
			break
		}
		client = a
		if !r.isTrusted(a) {
			break
		}
	}
	return client, true
}

// Middleware replaces each request's RemoteAddr with its client address
// (no port: the port of a forwarded client is not known), so that what
// reads RemoteAddr (rate limits, logs) sees the client and not the proxy.
// Without trusted proxies it returns next unchanged.
func (r *Resolver) Middleware(next http.Handler) http.Handler {
	if len(r.trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if a, ok := r.Client(req.RemoteAddr, req.Header); ok {
			req.RemoteAddr = a.String()
		}
		next.ServeHTTP(w, req)
	})
}

// xForwardedFor lists the addresses of X-Forwarded-For headers (several
// headers are one list, in order).
func xForwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(part))
		}
	}
	return out
}

// forwardedFor lists the for= parameters of Forwarded headers; nil when
// there is none. An element without for= is a hop that cannot be placed:
// it stands as an empty entry, which stops the walk.
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			hop := ""
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
					hop = strings.Trim(strings.TrimSpace(val), `"`)
				}
			}
			out = append(out, hop)
		}
	}
	return out
}

// parseHost reads an address with or without a port, IPv6 bracketed or
// not ("203.0.113.7", "203.0.113.7:4711", "[2001:db8::1]:4711", "2001:db8::1").
func parseHost(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap(), true
		}
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}
