package hub

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"syscall"
	"time"
	"unicode/utf8"
)

// The server writes frames itself: a frame is encoded once into its wire
// bytes (unmasked, unfragmented, uncompressed) and the same bytes go to
// every receiving connection, through each connection's outbound queue
// (out.go). gws reads client frames; the close frames it writes reach the
// socket through the same queue (see sockConn).

// Opcodes of the frames the server writes.
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// textFrame returns the wire bytes of a text frame carrying payload.
func textFrame(payload []byte) []byte { return appendFrame(nil, opText, payload) }

func appendFrame(dst []byte, opcode byte, payload []byte) []byte {
	n := len(payload)
	switch {
	case n <= 125:
		dst = append(dst, 0x80|opcode, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|opcode, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|opcode, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// closeFrame returns a close frame with code and reason (cut to fit the
// 125 bytes of a control frame, on a character boundary).
func closeFrame(code uint16, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	payload := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), code)
	return appendFrame(nil, opClose, append(payload, reason...))
}

var pingFrame = appendFrame(nil, opPing, nil)

// sockConn is the connection as gws sees it. Reads give back the bytes
// read before gws took over (pushback). Writes — gws writes only close
// frames: its reply to a client's close, the close after a read error —
// go through the client's outbound queue, after what is queued there and
// never inside a partly written frame; Close lets that queue finish first.
// Before the client exists (the handshake) both go straight to the socket.
type sockConn struct {
	net.Conn
	pushback []byte
	c        *Client // set once the handshake is done
}

func (s *sockConn) Read(b []byte) (int, error) {
	if len(s.pushback) > 0 {
		n := copy(b, s.pushback)
		s.pushback = s.pushback[n:]
		return n, nil
	}
	return s.Conn.Read(b)
}

func (s *sockConn) Write(b []byte) (int, error) {
	if s.c == nil {
		return s.Conn.Write(b)
	}
	frame := bytes.Clone(b) // gws reuses its buffer
	if len(frame) > 0 && frame[0]&0x0F == opClose {
		s.c.sendClose(frame, false)
	} else {
		s.c.write(frame)
	}
	return len(b), nil
}

// Close closes the socket once the outbound queue has written the close
// frame (at once when nothing is queued; at most closeTimeout later).
func (s *sockConn) Close() error {
	if s.c == nil {
		return s.Conn.Close()
	}
	s.c.closeSocketIfOpen()
	return nil
}

// hijack takes the connection from the HTTP server, keeping any bytes the
// client sent right after its request.
func hijack(w http.ResponseWriter) (*sockConn, syscall.RawConn, error) {
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	sc := &sockConn{Conn: nc}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		sc.pushback = bytes.Clone(b)
	}
	fc, ok := nc.(syscall.Conn)
	if !ok {
		nc.Close()
		return nil, nil, errors.New("websocket: connection has no file descriptor")
	}
	raw, err := fc.SyscallConn()
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return sc, raw, nil
}

// writeNow makes one write attempt that never waits: it returns how much
// the socket took (0 when it would block).
func writeNow(raw syscall.RawConn, b []byte) (int, error) {
	var n int
	var werr error
	err := raw.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), b)
			if werr != syscall.EINTR {
				return true // never wait for writability here
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN:
		return 0, nil
	case werr != nil:
		return 0, werr
	case n < 0:
		return 0, nil
	}
	return n, nil
}

// controlFrames handles the complete client ping and pong frames at the
// start of b and returns how many bytes they took. It stops at anything
// else (a data frame, a partial or malformed frame): gws reads that.
func (c *Client) controlFrames(b []byte) int {
	return scanControl(b, func(op byte, payload []byte) {
		c.lastSeen.Store(time.Now().UnixNano())
		if op == opPing {
			c.write(appendFrame(nil, opPong, payload))
		}
	})
}

// scanControl calls fn for each complete client ping or pong at the start
// of b and returns how many bytes they took.
func scanControl(b []byte, fn func(op byte, payload []byte)) int {
	done := 0
	for {
		op, payload, n := parseControl(b[done:])
		if n == 0 {
			return done
		}
		fn(op, payload)
		done += n
	}
}

// parseControl reads one complete, masked, unfragmented client ping or
// pong frame at the start of b: its opcode, unmasked payload (a new
// slice) and length on the wire. n is 0 for anything else, which is left
// to gws.
func parseControl(b []byte) (op byte, payload []byte, n int) {
	if len(b) < 2 {
		return 0, nil, 0
	}
	op = b[0] & 0x0F
	size := int(b[1] & 0x7F)
	if b[0]&0xF0 != 0x80 || op != opPing && op != opPong || b[1]&0x80 == 0 || size > 125 || len(b) < 6+size {
		return 0, nil, 0
	}
	mask := b[2:6]
	payload = make([]byte, size)
	for i := range payload {
		payload[i] = b[6+i] ^ mask[i%4]
	}
	return op, payload, 6 + size
}

// readBufferSize is gws's read buffer per connection: client frames are
// small actions, and larger ones are read past the buffer, straight into
// the message.
const readBufferSize = 64

func newReader(sc *sockConn) *bufio.Reader { return bufio.NewReaderSize(sc, readBufferSize) }
