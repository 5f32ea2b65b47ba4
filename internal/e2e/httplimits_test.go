package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/testkit"
)

// rawConn is a TCP connection to addr, closed when the test ends.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reads (and discards) until the server closes c, and says how
// long that took; ok is false when it is still open after limit.
func closedWithin(c net.Conn, limit time.Duration) (took time.Duration, got string, ok bool) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return time.Since(start), string(b), false
	}
	return time.Since(start), string(b), true
}

func TestHTTPLimitsCutSlowAndIdleConnectionsButNotWebSockets(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	// Distinct values, so that each cut is told apart (the server falls back
	// on the read timeout when no idle timeout is set).
	const (
		headerTimeout = time.Second
		idleTimeout   = time.Second
		readTimeout   = 4 * time.Second
		writeTimeout  = 2 * time.Second
	)
	in := env.Serve(t, func(c *config.Config) {
		c.HTTP.ReadHeaderTimeout = headerTimeout
		c.HTTP.ReadTimeout = readTimeout
		c.HTTP.WriteTimeout = writeTimeout
		c.HTTP.IdleTimeout = idleTimeout
		c.HTTP.MaxHeaderBytes = 8192
	})
	addr := in.Info.HTTPAddr
	// Generous bounds: the machine is shared. Before the limits existed
	// each of these stayed open indefinitely (or 10 s for headers).
	const cutBy = 10 * time.Second

	t.Run("a client trickling its headers is cut", func(t *testing.T) {
		c := rawConn(t, addr)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			_, _ = c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: signal\r\n"))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write([]byte("X-Slow-" + strings.Repeat("a", i%5+1) + ": 1\r\n")); err != nil {
					return
				}
			}
		}()
		took, got, ok := closedWithin(c, cutBy)
		if !ok {
			t.Fatalf("still open after %s", cutBy)
		}
		if took < headerTimeout/2 || took > readTimeout || strings.Contains(got, "200 OK") {
			t.Errorf("closed after %s with %q: want a cut near http.read_header_timeout and no answer", took, got)
		}
	})

	t.Run("a body declared and never sent is cut", func(t *testing.T) {
		for _, req := range []string{
			"GET /healthz HTTP/1.1\r\nHost: signal\r\nContent-Length: 1000\r\n\r\n",
			"POST /socket/websocket/clients/broadcast HTTP/1.1\r\nHost: signal\r\nAuthorization: Bearer " + testkit.APIKey +
				"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"topic\":",
		} {
			c := rawConn(t, addr)
			if _, err := c.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			if took, got, ok := closedWithin(c, cutBy); !ok {
				t.Errorf("%q: still open after %s", firstLine(req), took)
			} else if took < readTimeout/2 {
				t.Errorf("%q: cut after %s, before http.read_timeout (%s)", firstLine(req), took, readTimeout)
			} else if strings.Contains(got, " 200 ") && strings.HasPrefix(req, "POST") {
				t.Errorf("%q: answered %q to a body that never came", firstLine(req), firstLine(got))
			}
		}
	})

	t.Run("an idle keep-alive connection is closed", func(t *testing.T) {
		c := rawConn(t, addr)
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: signal\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 || resp.Close {
			t.Fatalf("first request: %v %+v", err, resp)
		}
		resp.Body.Close()
		if took, _, ok := closedWithin(c, cutBy); !ok {
			t.Errorf("an idle keep-alive connection still open after %s", took)
		} else if took < idleTimeout/2 || took >= readTimeout-500*time.Millisecond {
			t.Errorf("closed after %s, want about http.idle_timeout (%s), well before http.read_timeout (%s)", took, idleTimeout, readTimeout)
		}
	})

	t.Run("headers over the limit are refused with 431", func(t *testing.T) {
		c := rawConn(t, addr)
		_, _ = c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: signal\r\nX-Big: " + strings.Repeat("b", 16<<10) + "\r\n\r\n"))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("answer %v %+v, want 431", err, resp)
		}
	})

	t.Run("a WebSocket connection outlives every timeout", func(t *testing.T) {
		ws := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1"))
		ws.Welcome()
		time.Sleep(readTimeout + time.Second) // past the read, write, idle and header timeouts
		ws.Send(`{"action":"ping"}`)
		ws.Expect("signal/system/pong")
		// A write by the server after the write timeout, then a read.
		noKeepAlive := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		req, _ := http.NewRequest("POST", in.URL()+"/socket/websocket/clients/broadcast", strings.NewReader(`{"topic":"late","data":1}`))
		req.Header.Set("Authorization", "Bearer "+testkit.APIKey)
		resp, err := noKeepAlive.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("broadcast: %v %+v", err, resp)
		}
		resp.Body.Close()
		ws.Expect("late")
		time.Sleep(writeTimeout + time.Second)
		ws.Send(`{"action":"ping"}`)
		ws.Expect("signal/system/pong")
	})
}

// An error answered before the body is read closes the connection instead
// of waiting for the rest of the body (with the default read timeout of
// 30 s, the client would otherwise wait that long for its 401).
func TestAnErrorBeforeTheBodyIsReadIsAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	tests := []struct {
		name, path, auth string
		status           int
	}{
		{"no API key", "/socket/websocket/clients/broadcast", "", 401},
		{"a wrong API key", "/socket/websocket/clients/broadcast", "Authorization: Bearer not-a-key\r\n", 401},
		{"a bad room name", "/socket/websocket/clients/rooms/ops%2F%00/send", "Authorization: Bearer " + testkit.APIKey + "\r\n", 400},
		{"no such route", "/nowhere", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rawConn(t, in.Info.HTTPAddr)
			req := "POST " + tt.path + " HTTP/1.1\r\nHost: signal\r\n" + tt.auth + "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"topic\":"
			if _, err := c.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer within 5s: %v", err)
			}
			if resp.StatusCode != tt.status || !resp.Close {
				t.Errorf("answer %d (close %v), want %d and Connection: close", resp.StatusCode, resp.Close, tt.status)
			}
			if took, _, ok := closedWithin(c, 5*time.Second); !ok {
				t.Errorf("connection still open %s after the answer", took)
			}
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}
