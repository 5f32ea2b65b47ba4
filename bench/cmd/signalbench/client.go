package main

// The hidden `client` mode: a separate process holding many WebSocket
// connections from one loopback source address, so the clients' memory,
// file descriptors and ephemeral ports are not the harness's (nor the
// server's). It reports to the parent over stdout, as JSON lines:
//
//	{"e":"connected","ok":5000,"fail":0,"ms":4210,"err":""}
//	{"e":"b","i":17,"r":1789…,"id":3}     broadcast id 3 received by connection 17 at r (Unix ns)
//	{"e":"n","i":17,"r":1789…,"s":1789…}  notification received at r, sent by the producer at s
//	{"e":"c","i":17,"code":3008}          connection closed by the server
//
// and reads commands on stdin: "stall" makes the designated slow
// connections stop reading (their next frame blocks the read loop, so
// the kernel buffers fill and the server's writes back up); "resume" lets
// them read again; "quit" or the end of stdin closes everything and exits.
//
// With -noread (the hostile scenario) the connections are raw sockets with
// a 4 KiB receive buffer that complete the handshake and never read a byte
// again, so everything the server sends them piles up.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lxzan/gws"

	"github.com/signal-notify/signal/internal/auth"
)

const (
	topicBroadcast = "bench/broadcast"
	topicFill      = "bench/fill"
	slowRoom       = "bench/slow"
	topicCreated   = "observation/signal/notification/created"
)

type clientMode struct {
	url       string
	src       string
	n, first  int
	prefix    string
	secret    string
	slowEvery int
	conc      int
	noRead    bool

	stalled atomic.Bool
	resume  atomic.Pointer[chan struct{}] // closed by "resume"
	quit    chan struct{}
	closing atomic.Bool

	mu  sync.Mutex
	buf []byte
}

func runClient(args []string) error {
	c := &clientMode{quit: make(chan struct{})}
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.StringVar(&c.url, "url", "", "WebSocket URL")
	fs.StringVar(&c.src, "src", "127.0.0.1", "loopback source address to dial from")
	fs.IntVar(&c.n, "n", 1, "connections")
	fs.IntVar(&c.first, "first", 0, "global index of the first connection")
	fs.StringVar(&c.prefix, "prefix", "b", "subject prefix: connection i is recipient <prefix><i>")
	fs.StringVar(&c.secret, "secret", jwtSecret, "JWT secret")
	fs.IntVar(&c.slowEvery, "slow-every", 0, "connections whose global index is a multiple of this are slow-capable (0: none)")
	fs.IntVar(&c.conc, "conc", 64, "concurrent dials")
	fs.BoolVar(&c.noRead, "noread", false, "raw connections that never read after the handshake")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	conns := make([]*gws.Conn, c.n)
	raws := make([]net.Conn, c.n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// Flush reports every 50 ms.
	flushDone := make(chan struct{})
	go func() {
		defer close(flushDone)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-c.quit:
				c.flush(out)
				return
			}
			c.flush(out)
		}
	}()

	start := time.Now()
	var ok, fail atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, c.conc)
	var wg sync.WaitGroup
	for i := 0; i < c.n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			var err error
			for attempt := 0; attempt < 4; attempt++ {
				if c.noRead {
					raws[i], err = c.connectNoRead(ctx, i)
				} else {
					conns[i], err = c.connect(ctx, i)
				}
				if err == nil {
					ok.Add(1)
					return
				}
				time.Sleep(time.Duration(200*(attempt+1)) * time.Millisecond)
			}
			fail.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
		}(i)
	}
	wg.Wait()
	errText, _ := firstErr.Load().(string)
	line, _ := json.Marshal(map[string]any{"e": "connected", "ok": ok.Load(), "fail": fail.Load(), "ms": time.Since(start).Milliseconds(), "err": errText})
	c.emit(append(line, '\n'))

	// Commands.
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "stall":
			ch := make(chan struct{})
			c.resume.Store(&ch)
			c.stalled.Store(true)
		case "resume":
			c.stalled.Store(false)
			if ch := c.resume.Load(); ch != nil {
				close(*ch)
				c.resume.Store(nil)
			}
		case "quit":
			goto done
		}
	}
done:
	c.closing.Store(true)
	close(c.quit)
	<-flushDone
	for _, conn := range conns {
		if conn != nil {
			_ = conn.NetConn().Close()
		}
	}
	for _, conn := range raws {
		if conn != nil {
			_ = conn.Close()
		}
	}
	return nil
}

// connectNoRead dials with a 4 KiB receive buffer (set before connecting,
// so the window agrees), completes the handshake and never reads again.
func (c *clientMode) connectNoRead(ctx context.Context, i int) (net.Conn, error) {
	tok, err := auth.Sign(c.secret, c.prefix+strconv.Itoa(c.first+i), nil, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.src)},
		Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
		}}
	host := c.url[len("ws://"):]
	path := "/"
	if j := bytes.IndexByte([]byte(host), '/'); j >= 0 {
		host, path = host[:j], host[j:]
	}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer %s\r\n\r\n", path, host, tok)
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	// Read the response a byte at a time, so nothing after it is consumed.
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := nc.Read(b); err != nil {
			nc.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		head = append(head, b[0])
		if len(head) > 4096 {
			nc.Close()
			return nil, errors.New("handshake: response too long")
		}
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		nc.Close()
		line, _, _ := bytes.Cut(head, []byte("\r\n"))
		return nil, fmt.Errorf("handshake: %s", line)
	}
	_ = nc.SetReadDeadline(time.Time{})
	return nc, nil
}

// slow reports whether connection i (local index) is slow-capable.
func (c *clientMode) slow(i int) bool {
	return c.slowEvery > 0 && (c.first+i)%c.slowEvery == 0
}

type handler struct {
	gws.BuiltinEventHandler
	c     *clientMode
	i     int
	slow  bool
	ready chan string // topics of the handshake frames (welcome, joined, error)
}

// frameHead is the part of a frame the client looks at.
type frameHead struct {
	Topic string          `json:"topic"`
	Data  json.RawMessage `json:"data"`
}

func (h *handler) OnMessage(_ *gws.Conn, msg *gws.Message) {
	r := time.Now().UnixNano()
	defer msg.Close()
	c := h.c
	if h.slow && c.stalled.Load() {
		// Stop reading: the read loop stays here until "resume" (then it
		// reads the backlog) or the end.
		if ch := c.resume.Load(); ch != nil {
			select {
			case <-*ch:
			case <-c.quit:
				return
			}
		}
	}
	b := msg.Bytes()
	// The client's CPU is inside every latency (it shares the machine's
	// cores with the server): frames are read with byte searches, not
	// decoded.
	var topic []byte
	if i := bytes.Index(b[:min(len(b), 64)], []byte(`"topic":"`)); i >= 0 {
		rest := b[i+9:]
		if j := bytes.IndexByte(rest, '"'); j >= 0 {
			topic = rest[:j]
		}
	}
	switch string(topic) {
	case topicFill:
		return
	case topicBroadcast:
		if id, ok := intAfter(b, `"id":`); ok {
			c.emitRecv('b', c.first+h.i, r, id)
			return
		}
	case topicCreated:
		if sent, ok := intAfter(b, `"sentNs":`); ok {
			c.emitRecv('n', c.first+h.i, r, sent)
			return
		}
	}
	var f frameHead
	if err := json.Unmarshal(b, &f); err != nil {
		return
	}
	switch f.Topic {
	case topicBroadcast:
		var d struct {
			ID int64 `json:"id"`
		}
		_ = json.Unmarshal(f.Data, &d)
		c.emitRecv('b', c.first+h.i, r, d.ID)
	case topicCreated:
		var d struct {
			Data struct {
				SentNs int64 `json:"sentNs"`
			} `json:"data"`
		}
		_ = json.Unmarshal(f.Data, &d)
		c.emitRecv('n', c.first+h.i, r, d.Data.SentNs)
	case "signal/system/welcome", "signal/system/joined", "signal/system/error":
		select {
		case h.ready <- f.Topic:
		default:
		}
	}
}

func (h *handler) OnClose(_ *gws.Conn, err error) {
	if h.c.closing.Load() {
		return
	}
	code := 0
	if ce, ok := err.(*gws.CloseError); ok {
		code = int(ce.Code)
	}
	h.c.emit(fmt.Appendf(nil, `{"e":"c","i":%d,"code":%d}`+"\n", h.c.first+h.i, code))
}

// connect dials from the source address, completes the handshake, waits
// for the welcome and, for slow-capable connections, joins the slow room.
func (c *clientMode) connect(ctx context.Context, i int) (*gws.Conn, error) {
	slow := c.slow(i)
	var rooms []string
	if slow {
		rooms = []string{"bench/*"}
	}
	tok, err := auth.Sign(c.secret, c.prefix+strconv.Itoa(c.first+i), rooms, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.src)}}
	if slow {
		// A small receive buffer fills after a few frames.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
		}
	}
	host := c.url[len("ws://"):]
	if j := bytes.IndexByte([]byte(host), '/'); j >= 0 {
		host = host[:j]
	}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	h := &handler{c: c, i: i, slow: slow, ready: make(chan string, 4)}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+tok)
	conn, resp, err := gws.NewClientFromConn(h, &gws.ClientOption{Addr: c.url, RequestHeader: hdr, HandshakeTimeout: 20 * time.Second}, nc)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("handshake: %w (status %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("handshake: %w", err)
	}
	go conn.ReadLoop()
	wait := func(want string) error {
		select {
		case got := <-h.ready:
			if got != want {
				return fmt.Errorf("got %s, want %s", got, want)
			}
			return nil
		case <-time.After(30 * time.Second):
			return fmt.Errorf("no %s within 30s", want)
		}
	}
	if err := wait("signal/system/welcome"); err != nil {
		_ = nc.Close()
		return nil, err
	}
	if slow {
		if err := conn.WriteString(`{"action":"join","room":"` + slowRoom + `"}`); err != nil {
			_ = nc.Close()
			return nil, err
		}
		if err := wait("signal/system/joined"); err != nil {
			_ = nc.Close()
			return nil, err
		}
	}
	return conn, nil
}

// intAfter parses the integer following the last occurrence of key in b.
func intAfter(b []byte, key string) (int64, bool) {
	i := bytes.LastIndex(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := b[i+len(key):]
	j := 0
	for j < len(rest) && (rest[j] == '-' || rest[j] >= '0' && rest[j] <= '9') {
		j++
	}
	v, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return v, err == nil
}

// emitRecv reports a broadcast ('b', v = its id) or a notification ('n',
// v = its send time) received by connection idx at r.
func (c *clientMode) emitRecv(kind byte, idx int, r, v int64) {
	var buf [96]byte
	line := append(buf[:0], `{"e":"`...)
	line = append(line, kind)
	line = append(line, `","i":`...)
	line = strconv.AppendInt(line, int64(idx), 10)
	line = append(line, `,"r":`...)
	line = strconv.AppendInt(line, r, 10)
	if kind == 'b' {
		line = append(line, `,"id":`...)
	} else {
		line = append(line, `,"s":`...)
	}
	line = strconv.AppendInt(line, v, 10)
	c.emit(append(line, "}\n"...))
}

func (c *clientMode) emit(line []byte) {
	c.mu.Lock()
	c.buf = append(c.buf, line...)
	c.mu.Unlock()
}

func (c *clientMode) flush(out *bufio.Writer) {
	c.mu.Lock()
	b := c.buf
	c.buf = nil
	c.mu.Unlock()
	if len(b) > 0 {
		_, _ = out.Write(b)
	}
	_ = out.Flush()
}
