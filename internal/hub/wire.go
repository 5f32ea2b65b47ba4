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
)

// The server writes frames itself: a frame is encoded once into its wire
// bytes (unmasked, unfragmented, uncompressed) and the same bytes go to
// every receiving connection. gws still reads client frames and handles
// closing.

// Opcodes of the frames the server writes.
const (
	opText = 0x1
	opPing = 0x9
	opPong = 0xA
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

var pingFrame = appendFrame(nil, opPing, nil)

// write sends a frame's wire bytes. When nothing is queued for the client
// it is one non-blocking write on the caller's goroutine; what the socket
// does not take at once, and every frame while others wait, goes through
// the client's queue, written in order by gws's per-connection writer.
// The queue is bounded: a client past websocket.queue_limit is dropped.
func (c *Client) write(wire []byte) bool {
	if c.closed.Load() {
		c.hub.m.FramesDropped.Inc()
		return false
	}
	if c.pending.Load() == 0 && c.wmu.TryLock() {
		if c.pending.Load() == 0 {
			n, err := c.writeNow(wire)
			if err != nil {
				c.wmu.Unlock()
				c.abort("write failed: " + err.Error())
				return false
			}
			if n < len(wire) {
				// Queued before unlocking: nothing can slip in between the
				// part written and the rest.
				c.pending.Add(1)
				c.queue(wire[n:])
			}
			c.wmu.Unlock()
			return true
		}
		c.wmu.Unlock()
	}
	if int(c.pending.Add(1)) > c.hub.opts.QueueLimit {
		c.pending.Add(-1)
		c.dropSlow()
		return false
	}
	c.queue(wire)
	return true
}

// queue writes b on the connection's writer, after what is queued before.
// The caller has counted it in pending.
func (c *Client) queue(b []byte) {
	c.socket.Async(func() {
		c.wmu.Lock()
		_, err := c.pc.Conn.Write(b)
		c.pending.Add(-1)
		c.wmu.Unlock()
		if err != nil {
			c.abort("write failed: " + err.Error())
		}
	})
}

// writeNow makes one write attempt that never waits: it returns how much
// the socket took (0 when it would block).
func (c *Client) writeNow(b []byte) (int, error) {
	var n int
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
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

// peekConn gives back bytes read before gws took over reading.
type peekConn struct {
	net.Conn
	pushback []byte
}

func (p *peekConn) Read(b []byte) (int, error) {
	if len(p.pushback) > 0 {
		n := copy(b, p.pushback)
		p.pushback = p.pushback[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// hijack takes the connection from the HTTP server, keeping any bytes the
// client sent right after its request.
func hijack(w http.ResponseWriter) (*peekConn, syscall.RawConn, error) {
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	pc := &peekConn{Conn: nc}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		pc.pushback = bytes.Clone(b)
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		nc.Close()
		return nil, nil, errors.New("websocket: connection has no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return pc, raw, nil
}

// controlFrames handles the complete client ping and pong frames at the
// start of b and returns how many bytes they took. It stops at anything
// else (a data frame, a partial or malformed frame): gws reads that.
func (c *Client) controlFrames(b []byte) int {
	done := 0
	for {
		rest := b[done:]
		if len(rest) < 2 {
			return done
		}
		op := rest[0] & 0x0F
		n := int(rest[1] & 0x7F)
		if rest[0]&0xF0 != 0x80 || op != opPing && op != opPong || rest[1]&0x80 == 0 || n > 125 || len(rest) < 6+n {
			return done
		}
		c.lastSeen.Store(time.Now().UnixNano())
		if op == opPing {
			mask, payload := rest[2:6], rest[6:6+n]
			pong := make([]byte, n)
			for i := range payload {
				pong[i] = payload[i] ^ mask[i%4]
			}
			c.write(appendFrame(nil, opPong, pong))
		}
		done += 6 + n
	}
}

// readBufferSize is gws's read buffer per connection: client frames are
// small actions, and larger ones are read past the buffer, straight into
// the message.
const readBufferSize = 64

func newReader(pc *peekConn) *bufio.Reader { return bufio.NewReaderSize(pc, readBufferSize) }
