package testkit

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// Frame is a received WebSocket frame.
type Frame struct {
	Topic  string          `json:"topic"`
	Room   string          `json:"room,omitempty"`
	Pos    int64           `json:"pos,omitempty"`
	Counts json.RawMessage `json:"counts,omitempty"`
	Data   json.RawMessage `json:"data"`
}

// Client is a real WebSocket client that records what it receives.
type Client struct {
	// KeepSynced: signal/system/synced frames are received like the others
	// (by default they are dropped).
	KeepSynced bool

	t      testing.TB
	conn   *gws.Conn
	frames chan Frame
	closed chan struct{}

	mu        sync.Mutex
	closeCode uint16
	closeErr  error
}

type clientHandler struct {
	gws.BuiltinEventHandler
	c *Client
}

func (h *clientHandler) OnMessage(_ *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	var f Frame
	if err := json.Unmarshal(msg.Bytes(), &f); err != nil {
		h.c.t.Errorf("server sent a frame that is not JSON: %q", msg.Bytes())
		return
	}
	if f.Topic == "signal/system/synced" && !h.c.KeepSynced {
		// Every stream start ends with one (after the welcome, after a
		// catch-up): tests of the stream read it (KeepSynced, or
		// SyncClient); the others need not skip it.
		return
	}
	h.c.frames <- f
}

func (h *clientHandler) OnClose(_ *gws.Conn, err error) {
	h.c.mu.Lock()
	h.c.closeErr = err
	if ce, ok := err.(*gws.CloseError); ok {
		h.c.closeCode = ce.Code
	}
	h.c.mu.Unlock()
	close(h.c.closed)
}

// Dial connects to url with the token in the Authorization header. It
// fails the test when the server refuses.
func Dial(t testing.TB, url, token string) *Client {
	t.Helper()
	c, resp, err := TryDial(t, url, token)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	return c
}

// TryDial connects and returns the handshake response and error as they are.
func TryDial(t testing.TB, url, token string) (*Client, *http.Response, error) {
	t.Helper()
	c := &Client{t: t, frames: make(chan Frame, 100000), closed: make(chan struct{})}
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	conn, resp, err := gws.NewClient(&clientHandler{c: c}, &gws.ClientOption{Addr: url, RequestHeader: h, HandshakeTimeout: 5 * time.Second})
	if err != nil {
		return nil, resp, err
	}
	c.conn = conn
	go conn.ReadLoop()
	t.Cleanup(func() { conn.NetConn().Close() })
	return c, resp, nil
}

// Next returns the next frame, failing the test after timeout.
func (c *Client) Next(timeout time.Duration) Frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-time.After(timeout):
		c.t.Fatalf("no frame within %s", timeout)
		return Frame{}
	}
}

// Expect returns the next frame and checks its topic.
func (c *Client) Expect(topic string) Frame {
	c.t.Helper()
	f := c.Next(10 * time.Second)
	if f.Topic != topic {
		c.t.Fatalf("frame topic %q (data %s), want %q", f.Topic, f.Data, topic)
	}
	return f
}

// Welcome reads the welcome frame and returns the client id.
func (c *Client) Welcome() string {
	c.t.Helper()
	f := c.Expect("signal/system/welcome")
	var d struct {
		ClientID string   `json:"clientId"`
		Rooms    []string `json:"rooms"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil || d.ClientID == "" {
		c.t.Fatalf("welcome data %s", f.Data)
	}
	return d.ClientID
}

// Quiet fails the test if a frame arrives within d.
func (c *Client) Quiet(d time.Duration) {
	c.t.Helper()
	select {
	case f := <-c.frames:
		c.t.Fatalf("unexpected frame %s %s %s", f.Topic, f.Room, f.Data)
	case <-time.After(d):
	}
}

// Send writes a text frame.
func (c *Client) Send(s string) {
	c.t.Helper()
	if err := c.conn.WriteString(s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// SendBinary writes a binary frame.
func (c *Client) SendBinary(b []byte) {
	c.t.Helper()
	if err := c.conn.WriteMessage(gws.OpcodeBinary, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// Close closes the connection from the client side.
func (c *Client) Close() { _ = c.conn.WriteClose(1000, nil) }

// Closed waits for the server to close the connection and returns the close code.
func (c *Client) Closed(timeout time.Duration) uint16 {
	c.t.Helper()
	select {
	case <-c.closed:
	case <-time.After(timeout):
		c.t.Fatalf("connection not closed within %s", timeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode
}

// Done is closed once the connection is closed.
func (c *Client) Done() <-chan struct{} { return c.closed }

// Frames is the channel of received frames, for select loops.
func (c *Client) Frames() <-chan Frame { return c.frames }

// IsClosed reports, without waiting, whether the connection has closed.
func (c *Client) IsClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Conn is the underlying connection (for tests that misbehave on purpose).
func (c *Client) Conn() *gws.Conn { return c.conn }

// Drain returns the frames already received, without waiting.
func (c *Client) Drain() []Frame {
	var out []Frame
	for {
		select {
		case f := <-c.frames:
			out = append(out, f)
		default:
			return out
		}
	}
}

// ExpectError reads a signal/system/error frame and checks its code.
func (c *Client) ExpectError(code string) {
	c.t.Helper()
	f := c.Expect("signal/system/error")
	var d struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(f.Data, &d)
	if d.Code != code || strings.TrimSpace(d.Message) == "" {
		c.t.Fatalf("error frame %s, want code %q with a message", f.Data, code)
	}
}

// NoReadClient completes the WebSocket handshake and then never reads: a
// client whose socket buffer fills up.
type NoReadClient struct {
	conn net.Conn
}

// DialNoRead connects a client that never reads what the server sends.
func DialNoRead(t testing.TB, wsURL, token string) *NoReadClient {
	t.Helper()
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	// A 4 KiB receive buffer, set before connecting (so the window agrees
	// with it), fills up quickly.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "GET " + u.Path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("handshake: %q %v", status, err)
	}
	return &NoReadClient{conn: conn}
}

// Alive reports whether the server still holds the connection open: a
// write of a ping frame fails once the server closed it.
func (c *NoReadClient) Alive() bool {
	_ = c.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	// A masked, empty ping frame, as a client must send.
	_, err := c.conn.Write([]byte{0x89, 0x80, 1, 2, 3, 4})
	if err != nil {
		return false
	}
	_, err = c.conn.Write([]byte{0x89, 0x80, 1, 2, 3, 4})
	return err == nil
}

// Send writes a masked text frame (as a client must) without reading
// anything; false once the server has closed the connection.
func (c *NoReadClient) Send(text string) bool {
	p := []byte(text)
	h := []byte{0x81}
	switch n := len(p); {
	case n <= 125:
		h = append(h, 0x80|byte(n))
	case n <= 0xFFFF:
		h = append(h, 0x80|126, byte(n>>8), byte(n))
	default:
		h = append(h, 0x80|127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	mask := [4]byte{1, 2, 3, 4}
	h = append(h, mask[:]...)
	for i := range p {
		p[i] ^= mask[i%4]
	}
	// A write stuck for a minute means the server neither reads nor closes.
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Minute))
	_, err := c.conn.Write(append(h, p...))
	return err == nil
}
