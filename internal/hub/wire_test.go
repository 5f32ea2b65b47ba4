package hub

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lxzan/gws"
)

// wsFrame is one frame as the independent decoder below reads it.
type wsFrame struct {
	fin     bool
	rsv     byte
	op      byte
	masked  bool
	payload []byte
}

func (f wsFrame) String() string {
	p := f.payload
	if len(p) > 60 {
		p = append(p[:60:60], "…"...)
	}
	return fmt.Sprintf("op %#x fin %v len %d %q", f.op, f.fin, len(f.payload), p)
}

// closeCode is the status code of a close frame (0 when it has none).
func (f wsFrame) closeCode() uint16 {
	if len(f.payload) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(f.payload)
}

// readFrame is a decoder written from RFC 6455 section 5.2, independent
// of the server's encoder and of gws: it reads one frame and checks what
// a strict client (Node's ws, a browser) checks of a server frame.
func readFrame(r io.Reader) (wsFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return wsFrame{}, err
	}
	f := wsFrame{fin: h[0]&0x80 != 0, rsv: h[0] & 0x70, op: h[0] & 0x0F, masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return f, fmt.Errorf("16-bit length: %w", err)
		}
		if n = uint64(binary.BigEndian.Uint16(b[:])); n < 126 {
			return f, fmt.Errorf("length %d not in its minimal form", n)
		}
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return f, fmt.Errorf("64-bit length: %w", err)
		}
		if n = binary.BigEndian.Uint64(b[:]); n <= 0xFFFF || n>>63 != 0 {
			return f, fmt.Errorf("length %d not in its minimal form", n)
		}
	}
	var mask [4]byte
	if f.masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return f, err
		}
	}
	if n > 64<<20 {
		return f, fmt.Errorf("length %d: garbage", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, fmt.Errorf("payload of %d bytes: %w", n, err)
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= mask[i%4]
		}
	}
	return f, nil
}

// checkServerFrame holds a frame to what a server may send.
func checkServerFrame(f wsFrame) error {
	switch {
	case f.masked:
		return errors.New("a server frame is masked")
	case f.rsv != 0:
		return fmt.Errorf("reserved bits %#x set", f.rsv)
	case !f.fin:
		return errors.New("a fragmented frame (the server never fragments)")
	case f.op >= 0x8 && len(f.payload) > 125:
		return fmt.Errorf("control frame of %d bytes", len(f.payload))
	case f.op == opText && !utf8.Valid(f.payload):
		return errors.New("a text frame that is not UTF-8")
	case f.op == opClose && len(f.payload) == 1:
		return errors.New("a close frame of one byte")
	case f.op == opClose && len(f.payload) >= 2 && !utf8.Valid(f.payload[2:]):
		return errors.New("a close reason that is not UTF-8")
	case f.op != opText && f.op != opClose && f.op != opPing && f.op != opPong:
		return fmt.Errorf("opcode %#x", f.op)
	}
	return nil
}

// maskedFrame encodes a client frame (masked, as a client must).
func maskedFrame(op byte, payload []byte) []byte {
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b := appendFrame(nil, op, nil)[:1]
	n := len(payload)
	switch {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

func TestFramesDecodeWithAnIndependentDecoderAndWithGws(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xFFFF, 0x10000, 200 << 10, 1 << 20} {
		t.Run(fmt.Sprintf("a text frame of %d bytes", n), func(t *testing.T) {
			payload := bytes.Repeat([]byte("é"), n/2)
			if n%2 == 1 {
				payload = append(payload, 'x')
			}
			wire := textFrame(payload)
			f, err := readFrame(bytes.NewReader(wire))
			if err != nil || checkServerFrame(f) != nil || f.op != opText || !bytes.Equal(f.payload, payload) {
				t.Fatalf("decoded %v, %v, %v", f, err, checkServerFrame(f))
			}
			// gws's client side reads the same bytes.
			got := readWithGwsClient(t, wire)
			if !bytes.Equal(got, payload) {
				t.Fatalf("gws read %d bytes, want %d", len(got), len(payload))
			}
		})
	}
	t.Run("a close frame keeps its code and cuts a long reason on a character boundary", func(t *testing.T) {
		wire := closeFrame(3008, strings.Repeat("é", 100))
		f, err := readFrame(bytes.NewReader(wire))
		if err != nil || checkServerFrame(f) != nil || f.op != opClose || f.closeCode() != 3008 || len(f.payload) > 125 {
			t.Fatalf("decoded %v, %v, %v", f, err, checkServerFrame(f))
		}
	})
	t.Run("ping and pong are empty control frames", func(t *testing.T) {
		f, err := readFrame(bytes.NewReader(pingFrame))
		if err != nil || checkServerFrame(f) != nil || f.op != opPing || len(f.payload) != 0 {
			t.Fatalf("ping %v %v", f, err)
		}
	})
}

// readWithGwsClient feeds wire bytes to gws's client side over a real
// loopback connection and returns the first message it reads.
func readWithGwsClient(t *testing.T, wire []byte) []byte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		key := ""
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if k, ok := strings.CutPrefix(line, "Sec-Websocket-Key: "); ok {
				key = strings.TrimSpace(k)
			}
			if line == "\r\n" {
				break
			}
		}
		fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acceptKey(key))
		conn.Write(wire)
		time.Sleep(5 * time.Second) // until the client is done
	}()
	got := make(chan []byte, 1)
	h := &gwsReader{got: got}
	conn, _, err := gws.NewClient(h, &gws.ClientOption{Addr: "ws://" + ln.Addr().String() + "/", ReadMaxPayloadSize: 2 << 20, CheckUtf8Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.NetConn().Close()
	go conn.ReadLoop()
	select {
	case b := <-got:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("gws read nothing")
		return nil
	}
}

type gwsReader struct {
	gws.BuiltinEventHandler
	got chan []byte
}

func (g *gwsReader) OnMessage(_ *gws.Conn, m *gws.Message) {
	g.got <- bytes.Clone(m.Bytes())
	m.Close()
}

func TestParseControlTakesOnlyCompleteMaskedPingsAndPongs(t *testing.T) {
	ping := maskedFrame(opPing, []byte("hi"))
	tests := []struct {
		name   string
		in     []byte
		op     byte
		wantN  int
		answer string
	}{
		{"a masked ping with a payload", ping, opPing, len(ping), "hi"},
		{"a masked empty pong", maskedFrame(opPong, nil), opPong, 6, ""},
		{"a ping of 125 bytes", maskedFrame(opPing, bytes.Repeat([]byte("p"), 125)), opPing, 131, strings.Repeat("p", 125)},
		{"an unmasked ping", appendFrame(nil, opPing, nil), 0, 0, ""},
		{"an unmasked ping followed by more bytes", append(appendFrame(nil, opPing, []byte("ab")), maskedFrame(opText, []byte("{}"))...), 0, 0, ""},
		{"a ping cut short", ping[:len(ping)-1], 0, 0, ""},
		{"two header bytes only", ping[:2], 0, 0, ""},
		{"a text frame", maskedFrame(opText, []byte("{}")), 0, 0, ""},
		{"a close frame", maskedFrame(opClose, []byte{3, 232}), 0, 0, ""},
		{"a fragmented ping", append([]byte{0x09}, ping[1:]...), 0, 0, ""},
		{"a ping with a reserved bit", append([]byte{0x80 | 0x40 | opPing}, ping[1:]...), 0, 0, ""},
		{"a ping with a 16-bit length", append([]byte{0x80 | opPing, 0x80 | 126, 0, 2}, ping[2:]...), 0, 0, ""},
		{"nothing", nil, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, payload, n := parseControl(tt.in)
			if n != tt.wantN || op != tt.op || n > 0 && string(payload) != tt.answer {
				t.Fatalf("parseControl = %#x %q %d, want %#x %q %d", op, payload, n, tt.op, tt.answer, tt.wantN)
			}
		})
	}
}

func TestWriteNowTakesWhatTheSocketTakesAndNeverWaits(t *testing.T) {
	server, client := tcpPair(t, 4096)
	raw, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	setSndBuf(t, raw, 4096)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	total, partial := 0, false
	start := time.Now()
	for i := 0; ; i++ {
		n, err := writeNow(raw, chunk)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if n > 0 && n < len(chunk) {
			partial = true
		}
		if n == 0 {
			break // EAGAIN: the socket is full and the call did not wait
		}
		if i > 10000 {
			t.Fatal("the socket never filled")
		}
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("writeNow waited: %s", time.Since(start))
	}
	if !partial {
		t.Error("no partial write before EAGAIN")
	}
	// What was taken is exactly what the peer reads.
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadFull(client, make([]byte, total))
	if err != nil || got != total {
		t.Fatalf("peer read %d of %d: %v", got, total, err)
	}
	// A closed socket is an error, not a silent 0.
	server.Close()
	if _, err := writeNow(raw, chunk); err == nil {
		t.Error("writeNow on a closed socket did not fail")
	}
}

// tcpPair is a loopback TCP connection; the client end has a receive
// buffer of rcvbuf bytes (0: the default).
func tcpPair(t *testing.T, rcvbuf int) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	d := net.Dialer{Control: smallRcvBuf(rcvbuf)}
	client, err = d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func smallRcvBuf(n int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		if n == 0 {
			return nil
		}
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		})
	}
}

func setSndBuf(t *testing.T, raw syscall.RawConn, n int) {
	t.Helper()
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, n)
	}); err != nil || serr != nil {
		t.Fatalf("SO_SNDBUF: %v %v", err, serr)
	}
}
