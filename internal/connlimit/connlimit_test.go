package connlimit_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/connlimit"
)

// serve runs an HTTP server with the caps of o on a loopback port.
func serve(t *testing.T, o connlimit.Options) (*connlimit.Listener, string, *sync.Map) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := &sync.Map{}
	o.OnRefuse = func(reason string) {
		n, _ := refused.LoadOrStore(reason, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
	}
	lim := connlimit.New(ln, o)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/work", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "done") })
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, _ *http.Request) {
		c, brw, _ := http.NewResponseController(w).Hijack()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\n")
		brw.Flush()
		go func() { io.Copy(io.Discard, c); c.Close() }() // lives until the client closes
	})
	srv := &http.Server{Handler: connlimit.Guard(mux, "/healthz"), ConnContext: connlimit.ConnContext, IdleTimeout: time.Minute}
	go srv.Serve(lim)
	t.Cleanup(func() { srv.Close() })
	return lim, ln.Addr().String(), refused
}

// request sends one keep-alive request on c and returns the status and
// whether the server said it closes the connection.
func request(t *testing.T, c net.Conn, r *bufio.Reader, path string) (int, bool) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return 0, true
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return 0, true
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Close
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func waitOpen(t *testing.T, lim *connlimit.Listener, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for lim.Open() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", lim.Open(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIdleKeepAlivesCountAgainstThePerAddressCap(t *testing.T) {
	lim, addr, refused := serve(t, connlimit.Options{PerIP: 3})
	var idle []net.Conn
	for i := 0; i < 3; i++ {
		c, r := dial(t, addr)
		if code, closed := request(t, c, r, "/work"); code != 200 || closed {
			t.Fatalf("connection %d: %d (closed %v)", i, code, closed)
		}
		idle = append(idle, c) // kept open, idle
	}
	waitOpen(t, lim, 3)
	c, r := dial(t, addr)
	code, closed := request(t, c, r, "/healthz")
	if code != http.StatusTooManyRequests || !closed {
		t.Fatalf("a 4th connection from the address: %d (closed %v), want 429 and a close", code, closed)
	}
	if n, _ := refused.Load(connlimit.RefusedPerIP); n == nil || n.(*atomic.Int32).Load() != 1 {
		t.Errorf("refusals counted: %v", n)
	}
	// Closing one frees its place.
	idle[0].Close()
	waitOpen(t, lim, 2)
	c, r = dial(t, addr)
	if code, _ := request(t, c, r, "/work"); code != 200 {
		t.Errorf("after a close: %d, want 200", code)
	}
}

func TestPastTheTotalCapOnlyHealthChecksAreAnswered(t *testing.T) {
	lim, addr, _ := serve(t, connlimit.Options{Max: 2, Reserve: 1})
	for i := 0; i < 2; i++ {
		c, r := dial(t, addr)
		if code, _ := request(t, c, r, "/work"); code != 200 {
			t.Fatalf("connection %d: %d", i, code)
		}
	}
	waitOpen(t, lim, 2) // both idle
	reserve, r := dial(t, addr)
	if code, closed := request(t, reserve, r, "/work"); code != http.StatusServiceUnavailable || !closed {
		t.Errorf("work on the reserve: %d (closed %v), want 503 and a close", code, closed)
	}
	waitOpen(t, lim, 2)
	reserve, r = dial(t, addr)
	if code, closed := request(t, reserve, r, "/healthz"); code != 200 || !closed {
		t.Errorf("/healthz on the reserve: %d (closed %v), want 200 and a close", code, closed)
	}
	// The reserve is taken (the connection above may not be closed yet):
	// past Max + Reserve every connection is refused at once.
	hold, _ := dial(t, addr)
	io.WriteString(hold, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // never finished: holds the reserve
	waitOpen(t, lim, 3)
	c, r3 := dial(t, addr)
	if code, closed := request(t, c, r3, "/healthz"); code != http.StatusServiceUnavailable || !closed {
		t.Errorf("past the reserve: %d (closed %v), want 503 server_full", code, closed)
	}
}

func TestAHijackedConnectionCountsUntilItCloses(t *testing.T) {
	lim, addr, _ := serve(t, connlimit.Options{PerIP: 1})
	c, r := dial(t, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n")
	line, _ := r.ReadString('\n')
	if !strings.Contains(line, "101") {
		t.Fatalf("hijack: %q", line)
	}
	waitOpen(t, lim, 1)
	c2, r2 := dial(t, addr)
	if code, _ := request(t, c2, r2, "/healthz"); code != http.StatusTooManyRequests {
		t.Errorf("while the hijacked connection lives: %d, want 429", code)
	}
	c.Close()
	waitOpen(t, lim, 0)
}
