package hub

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// What one client may cost, besides its byte budget (out.go): how many
// connections may exist (in all, per token subject), how fast one source
// address may open them, and how fast a client may send actions.

// Refusal is an upgrade turned down before it happened: the caller answers
// it as a JSON error with Status (429 or 503) and Retry-After.
type Refusal struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Message }

// Codes of refusals, also the reason label of signal_websocket_refused_total.
const (
	RefusedRate    = "rate_limited"         // upgrades per source address
	RefusedSubject = "too_many_connections" // per token subject
	RefusedFull    = "server_full"          // websocket.max_connections
)

// admission counts connections, in all and per subject, from the moment
// they are admitted (before the upgrade) until OnClose.
type admission struct {
	mu       sync.Mutex
	total    int
	subjects map[string]int32
	addrs    map[netip.Prefix]int64 // GCRA: when each address's bucket is full again (unix nanos)
	swept    int64
}

// AllowUpgrade charges one upgrade to the request's source address
// (websocket.upgrade_rate, a token bucket of websocket.upgrade_burst). It
// is called before the token is checked, so a flood costs no verification.
func (h *Hub) AllowUpgrade(r *http.Request) *Refusal {
	rate := h.opts.UpgradeRate
	if rate <= 0 {
		return nil
	}
	key, ok := addrKey(r.RemoteAddr)
	if !ok {
		return nil
	}
	interval := int64(float64(time.Second) / rate)
	burst := int64(h.opts.UpgradeBurst) * interval
	now := time.Now().UnixNano()
	a := &h.admit
	a.mu.Lock()
	if now-a.swept > int64(time.Minute) { // forget full buckets
		for k, tat := range a.addrs {
			if tat <= now {
				delete(a.addrs, k)
			}
		}
		a.swept = now
	}
	tat := max(a.addrs[key], now)
	if tat+interval-now > burst {
		a.mu.Unlock()
		h.m.WSRefused.WithLabelValues(RefusedRate).Inc()
		return &Refusal{Status: http.StatusTooManyRequests, Code: RefusedRate, RetryAfter: time.Duration(tat + interval - now - burst),
			Message: fmt.Sprintf("too many connections from this address: at most %g per second (websocket.upgrade_rate)", rate)}
	}
	a.addrs[key] = tat + interval
	a.mu.Unlock()
	return nil
}

// addrKey is the bucket of a source address: the address itself, or its
// /64 for IPv6 (one host usually has a whole /64). remote is host:port, or
// a bare address (a client behind a trusted proxy: clientaddr).
func addrKey(remote string) (netip.Prefix, bool) {
	ap, err := netip.ParseAddrPort(remote)
	if a, aerr := netip.ParseAddr(remote); aerr == nil {
		ap, err = netip.AddrPortFrom(a, 0), nil
	}
	if err != nil {
		host, _, err2 := net.SplitHostPort(remote)
		if err2 != nil {
			return netip.Prefix{}, false
		}
		a, err3 := netip.ParseAddr(host)
		if err3 != nil {
			return netip.Prefix{}, false
		}
		ap = netip.AddrPortFrom(a, 0)
	}
	a := ap.Addr().Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p, true
}

// admitConn reserves a connection for subject, or refuses it.
func (h *Hub) admitConn(subject string) *Refusal {
	a := &h.admit
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.total >= h.opts.MaxConnections {
		h.m.WSRefused.WithLabelValues(RefusedFull).Inc()
		return &Refusal{Status: http.StatusServiceUnavailable, Code: RefusedFull, RetryAfter: 5 * time.Second,
			Message: fmt.Sprintf("this server holds its maximum of %d connections (websocket.max_connections)", h.opts.MaxConnections)}
	}
	if limit := h.opts.MaxConnectionsPerSubject; limit > 0 && int(a.subjects[subject]) >= limit {
		h.m.WSRefused.WithLabelValues(RefusedSubject).Inc()
		return &Refusal{Status: http.StatusTooManyRequests, Code: RefusedSubject, RetryAfter: 5 * time.Second,
			Message: fmt.Sprintf("this subject already has %d connections here (websocket.max_connections_per_subject)", limit)}
	}
	a.total++
	a.subjects[subject]++
	return nil
}

// release gives back what admitConn reserved.
func (h *Hub) release(subject string) {
	a := &h.admit
	a.mu.Lock()
	a.total--
	if n := a.subjects[subject] - 1; n > 0 {
		a.subjects[subject] = n
	} else {
		delete(a.subjects, subject)
	}
	a.mu.Unlock()
}

// fdLimit is the process's open-file limit (0 when unknown).
func fdLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return int(min(rl.Cur, 1<<30))
}

// replayCost is what a join with since counts against the action rate:
// it is a database query and up to websocket.replay_limit frames.
const replayCost = 10

// allow charges cost actions to the client's rate (websocket.action_rate,
// a bucket of websocket.action_burst), by GCRA on one int64. A refused
// action is answered with rate_limited and still costs one: a client that
// keeps sending faster than allowed runs out of credit, and once it is a
// further burst behind it is closed with 1008. Only the read goroutine
// calls it.
func (c *Client) allow(cost int, room string) bool {
	o := &c.hub.opts
	if o.ActionRate <= 0 {
		return true
	}
	interval := int64(float64(time.Second) / o.ActionRate)
	burst := int64(o.ActionBurst) * interval
	now := time.Now().UnixNano()
	tat := max(c.actions, now)
	if tat+int64(cost)*interval-now <= burst {
		c.actions = tat + int64(cost)*interval
		return true
	}
	c.actions = tat + interval
	c.hub.m.WSRateLimited.Inc()
	if c.actions-now > 2*burst {
		if c.sendClose(closeFrame(ClosePolicy, "too many actions"), false) {
			c.hub.log.Warn("websocket client kept sending past its action rate, disconnecting", "client", c.id, "sub", c.subject(), "action_rate", o.ActionRate)
		}
		return false
	}
	c.sendError(actionErr(CodeRateLimited, room, "more than %g actions per second (a join with since counts %d): slow down", o.ActionRate, replayCost))
	return false
}
