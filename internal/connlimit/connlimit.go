package connlimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Refusal reasons (the reason label of the refused counter).
const (
	RefusedPerIP = "too_many_connections" // Options.PerIP
	RefusedFull  = "server_full"          // Options.Max + Options.Reserve
)

// DefaultReserve is how many connections past Max are kept for health
// checks.
const DefaultReserve = 32

// Options configure a Listener.
type Options struct {
	// Max is the connections the listener serves in full; 0: no cap.
	Max int
	// Reserve connections past Max may only ask what the Guard lets
	// through (health checks), one request each.
	Reserve int
	// PerIP caps the connections of one source address (IPv6: one /64);
	// 0: no cap.
	PerIP int
	// OnRefuse, when set, is called with the reason of each refusal.
	OnRefuse func(reason string)
	Logger   *slog.Logger
}

// Listener is a net.Listener with the caps of Options.
type Listener struct {
	net.Listener
	o Options

	mu    sync.Mutex
	total int
	perIP map[netip.Prefix]int

	refusing atomic.Int32 // refusals being written
	logged   atomic.Int64 // unix seconds of the last refusal logged
}

// maxRefusing bounds the refusals written at once (each takes at most
// refusalTime); past it a connection is closed without an answer.
const (
	maxRefusing = 64
	refusalTime = time.Second
)

// DefaultMax is Max when none is configured: the open-file limit minus
// 512 for the process's other files (the database pool, Kafka, logs) and
// Reserve, and at least 64.
func DefaultMax() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return max(int(min(rl.Cur, 1<<30))-512-DefaultReserve, 64)
}

// New wraps ln.
func New(ln net.Listener, o Options) *Listener {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Max > 0 && o.Reserve <= 0 {
		o.Reserve = DefaultReserve
	}
	return &Listener{Listener: ln, o: o, perIP: map[netip.Prefix]int{}}
}

// Open is the number of connections open now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Accept returns the next connection within the caps; the others are
// refused (answered and closed) on the way.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, keyed := addrKey(c.RemoteAddr())
		l.mu.Lock()
		reason := ""
		switch {
		case l.o.PerIP > 0 && keyed && l.perIP[key] >= l.o.PerIP:
			reason = RefusedPerIP
		case l.o.Max > 0 && l.total >= l.o.Max+l.o.Reserve:
			reason = RefusedFull
		}
		if reason != "" {
			l.mu.Unlock()
			l.refuse(c, reason)
			continue
		}
		reserved := l.o.Max > 0 && l.total >= l.o.Max
		l.total++
		if keyed {
			l.perIP[key]++
		}
		l.mu.Unlock()
		return &Conn{Conn: c, l: l, key: key, keyed: keyed, reserved: reserved}, nil
	}
}

func (l *Listener) release(c *Conn) {
	l.mu.Lock()
	l.total--
	if c.keyed {
		if n := l.perIP[c.key] - 1; n > 0 {
			l.perIP[c.key] = n
		} else {
			delete(l.perIP, c.key)
		}
	}
	l.mu.Unlock()
}

// refuse answers c with an HTTP error and closes it, without waiting for
// its request (it may never come): the answer is written at once, the rest
// of what the client sends within refusalTime is read and dropped, so the
// close does not reset the connection before the client read the answer.
func (l *Listener) refuse(c net.Conn, reason string) {
	if l.o.OnRefuse != nil {
		l.o.OnRefuse(reason)
	}
	if now := time.Now().Unix(); l.logged.Swap(now) != now {
		l.o.Logger.Warn("connection refused: http.max_connections or http.max_connections_per_ip reached (logged at most once a second)",
			"reason", reason, "remote", c.RemoteAddr().String())
	}
	if l.refusing.Add(1) > maxRefusing {
		l.refusing.Add(-1)
		c.Close()
		return
	}
	go func() {
		defer l.refusing.Add(-1)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(refusalTime))
		_, _ = io.WriteString(c, refusal(reason))
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// refusal is the whole HTTP answer of a refused connection, in the JSON
// error shape of the REST API.
func refusal(reason string) string {
	status, msg := "429 Too Many Requests", "too many connections from this address (http.max_connections_per_ip)"
	if reason == RefusedFull {
		status, msg = "503 Service Unavailable", "this server holds its maximum of connections (http.max_connections)"
	}
	body := fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`+"\n", reason, msg)
	return "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// Conn is an accepted connection; closing it frees its place.
type Conn struct {
	net.Conn
	l        *Listener
	key      netip.Prefix
	keyed    bool
	reserved bool // past Max: health checks only
	once     sync.Once
}

// Close closes the connection and frees its place (once).
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

// SyscallConn gives the file descriptor of the connection underneath (the
// WebSocket hub writes to it directly).
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("connlimit: the connection has no file descriptor")
}

// CloseWrite half-closes the connection underneath, when it can.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("connlimit: the connection cannot half-close")
}

type reservedKey struct{}

// ConnContext is the http.Server's ConnContext: it marks the requests of a
// reserved connection for Guard.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	for {
		if lc, ok := c.(*Conn); ok {
			if lc.reserved {
				return context.WithValue(ctx, reservedKey{}, true)
			}
			return ctx
		}
		nc, ok := c.(interface{ NetConn() net.Conn }) // TLS
		if !ok {
			return ctx
		}
		c = nc.NetConn()
	}
}

// Guard lets a request of a reserved connection (past Max) through only
// to the paths given (the health checks), and closes such a connection
// after its answer. Any other request on it is answered 503 server_full.
func Guard(next http.Handler, paths ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reserved, _ := r.Context().Value(reservedKey{}).(bool); !reserved {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		for _, p := range paths {
			if r.URL.Path == p && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
				next.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"code":"server_full","message":"this server holds its maximum of connections (http.max_connections): only /healthz and /readyz are answered on this one"}}`+"\n")
	})
}

// addrKey is the bucket of a source address: the address itself, or its
// /64 for IPv6 (one host usually has a whole /64).
func addrKey(a net.Addr) (netip.Prefix, bool) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}, false
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}
