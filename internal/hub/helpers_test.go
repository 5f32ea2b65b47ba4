package hub

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/metrics"
)

const testSecret = "hub-test-secret-0123456789abcdef"

// testServer is a real hub behind a real HTTP server on loopback, with
// the same order of checks as the REST layer: upgrade rate, token, limits.
type testServer struct {
	t    *testing.T
	h    *Hub
	addr string
	logs *logBuffer
}

func newTestServer(t *testing.T, o Options) *testServer {
	t.Helper()
	logs := &logBuffer{}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	v := auth.NewVerifier(testSecret)
	if o.Verify == nil {
		o.Verify = v.Verify
	}
	h := New(o)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ref := h.AllowUpgrade(r); ref != nil {
			http.Error(w, ref.Code, ref.Status)
			return
		}
		claims, err := v.Verify(r.URL.Query().Get("token"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if err := h.Upgrade(w, r, claims); err != nil {
			var ref *Refusal
			if errors.As(err, &ref) {
				http.Error(w, ref.Code, ref.Status)
			}
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx, 0)
		srv.Close()
	})
	return &testServer{t: t, h: h, addr: ln.Addr().String(), logs: logs}
}

func (s *testServer) token(sub string, ttl time.Duration, rooms ...string) string {
	s.t.Helper()
	tok, err := auth.Sign(testSecret, sub, rooms, ttl)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// client returns the hub's client with this id, once it is registered
// (the welcome goes out just before).
func (s *testServer) client(id string) *Client {
	s.t.Helper()
	var c *Client
	eventually(s.t, "client "+id, func() bool {
		s.h.mu.RLock()
		defer s.h.mu.RUnlock()
		c = s.h.clients[id]
		return c != nil
	})
	return c
}

// eventually waits for cond, failing the test after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuffer collects log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// rawClient is a WebSocket client written for the tests: it does the
// handshake by hand and reads frames with the independent decoder
// (readFrame), checking each server frame. It reads only when a test asks
// for a frame, so it can play a client that does not read.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	pong bool // answer server pings
}

type dialOpts struct {
	rcvbuf int    // client receive buffer (0: default)
	query  string // more of the query string (since=…)
}

// dialRawQuery dials with more query parameters (since=…).
func (s *testServer) dialRawQuery(token, query string) *rawClient {
	s.t.Helper()
	return s.dialRaw(token, dialOpts{query: query})
}

func (s *testServer) dialRaw(token string, o dialOpts) *rawClient {
	s.t.Helper()
	c, status, err := s.tryDialRaw(token, o)
	if err != nil {
		s.t.Fatalf("dial: %v (status %d)", err, status)
	}
	return c
}

func (s *testServer) tryDialRaw(token string, o dialOpts) (*rawClient, int, error) {
	t := s.t
	d := net.Dialer{Control: smallRcvBuf(o.rcvbuf), Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", s.addr)
	if err != nil {
		return nil, 0, err
	}
	t.Cleanup(func() { conn.Close() })
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	q := "token=" + url.QueryEscape(token)
	if o.query != "" {
		q += "&" + o.query
	}
	fmt.Fprintf(conn, "GET /ws?%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n",
		q, s.addr, key)
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		conn.Close()
		return nil, resp.StatusCode, fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key) {
		return nil, resp.StatusCode, errors.New("bad Sec-WebSocket-Accept")
	}
	return &rawClient{t: t, conn: conn, br: br}, resp.StatusCode, nil
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// readOne reads the next frame, waiting at most wait.
func (c *rawClient) readOne(wait time.Duration) (wsFrame, error) {
	c.conn.SetReadDeadline(time.Now().Add(wait))
	defer c.conn.SetReadDeadline(time.Time{})
	f, err := readFrame(c.br)
	if err != nil {
		return f, err
	}
	if err := checkServerFrame(f); err != nil {
		return f, fmt.Errorf("bad frame from the server: %w (%v)", err, f)
	}
	if f.op == opPing && c.pong {
		c.send(opPong, f.payload)
	}
	return f, nil
}

func (c *rawClient) send(op byte, payload []byte) error {
	_, err := c.conn.Write(maskedFrame(op, payload))
	return err
}

func (c *rawClient) sendText(s string) {
	c.t.Helper()
	if err := c.send(opText, []byte(s)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *rawClient) sendClose(code uint16, reason string) {
	c.t.Helper()
	p := binary.BigEndian.AppendUint16(nil, code)
	if err := c.send(opClose, append(p, reason...)); err != nil {
		c.t.Fatalf("send close: %v", err)
	}
}

// next returns the next frame, skipping pings and pongs unless control.
func (c *rawClient) next(control bool) wsFrame {
	c.t.Helper()
	for {
		f, err := c.readOne(10 * time.Second)
		if err != nil {
			c.t.Fatalf("reading a frame: %v", err)
		}
		if !control && (f.op == opPing || f.op == opPong) {
			continue
		}
		return f
	}
}

type testFrame struct {
	Topic string          `json:"topic"`
	Room  string          `json:"room"`
	Data  json.RawMessage `json:"data"`
}

// expect reads the next data frame and checks its topic.
func (c *rawClient) expect(topic string) testFrame {
	c.t.Helper()
	f := c.next(false)
	if f.op != opText {
		c.t.Fatalf("got %v, want a %s frame", f, topic)
	}
	var tf testFrame
	if err := json.Unmarshal(f.payload, &tf); err != nil {
		c.t.Fatalf("frame %q: %v", f.payload, err)
	}
	if tf.Topic != topic {
		c.t.Fatalf("frame %s %s, want topic %s", tf.Topic, tf.Data, topic)
	}
	return tf
}

// welcome reads the welcome frame and returns the client id.
func (c *rawClient) welcome() string {
	c.t.Helper()
	var d struct {
		ClientID string `json:"clientId"`
	}
	json.Unmarshal(c.expect("signal/system/welcome").Data, &d)
	return d.ClientID
}

// expectError reads an error frame with code.
func (c *rawClient) expectError(code string) string {
	c.t.Helper()
	var d struct{ Code, Message string }
	json.Unmarshal(c.expect("signal/system/error").Data, &d)
	if d.Code != code {
		c.t.Fatalf("error %s (%s), want %s", d.Code, d.Message, code)
	}
	return d.Message
}

// expectClose reads up to the close frame, checks its code, and that the
// stream ends right after it.
func (c *rawClient) expectClose(code uint16) {
	c.t.Helper()
	for {
		f := c.next(false)
		if f.op != opClose {
			continue
		}
		if f.closeCode() != code {
			c.t.Fatalf("close code %d (%q), want %d", f.closeCode(), f.payload[min(2, len(f.payload)):], code)
		}
		c.expectEnd()
		return
	}
}

// expectEnd checks that nothing follows and the server closed the socket.
func (c *rawClient) expectEnd() {
	c.t.Helper()
	for {
		f, err := c.readOne(10 * time.Second)
		if err == nil && (f.op == opPing || f.op == opPong) {
			continue
		}
		if err == nil {
			c.t.Fatalf("a frame after the end: %v", f)
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
			c.t.Fatalf("the stream ended with %v, want the end of the stream", err)
		}
		return
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}
