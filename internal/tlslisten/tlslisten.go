package tlslisten

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// copyBuffer is one TLS record's worth of plaintext, each way.
const copyBuffer = 16 << 10

// Listener accepts TLS connections on an inner listener and hands out
// their plaintext ends.
type Listener struct {
	inner     net.Listener
	config    *tls.Config
	handshake time.Duration
	log       *slog.Logger

	conns  chan net.Conn
	done   chan struct{}
	once   sync.Once
	errMu  sync.Mutex
	accErr error
}

// New starts accepting on inner. handshake bounds each TLS handshake (a
// client that never completes one holds only its own goroutine that long).
func New(inner net.Listener, config *tls.Config, handshake time.Duration, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.Default()
	}
	l := &Listener{inner: inner, config: config, handshake: handshake, log: log,
		conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			l.errMu.Lock()
			l.accErr = err
			l.errMu.Unlock()
			l.Close()
			return
		}
		go l.serve(c)
	}
}

// serve handshakes c, then pumps bytes between it and a socket pair.
func (l *Listener) serve(raw net.Conn) {
	tc := tls.Server(raw, l.config)
	if l.handshake > 0 {
		_ = raw.SetDeadline(time.Now().Add(l.handshake))
	}
	if err := tc.Handshake(); err != nil {
		l.log.Debug("tls handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	inside, outside, err := socketPair()
	if err != nil {
		l.log.Warn("tls: no socket pair for a connection: closing it", "err", err)
		tc.Close()
		return
	}
	conn := &peerConn{UnixConn: inside, local: raw.LocalAddr(), remote: raw.RemoteAddr(), outer: raw}
	select {
	case l.conns <- conn:
	case <-l.done:
		tc.Close()
		_ = inside.Close()
		_ = outside.Close()
		return
	}
	// Client to server: at the client's end of stream, the server reads EOF.
	go func() {
		_, _ = io.CopyBuffer(outside, tc, make([]byte, copyBuffer))
		_ = outside.CloseWrite()
	}()
	// Server to client: when the server closes its end, so does TLS
	// (close_notify), which also ends the copy above.
	_, _ = io.CopyBuffer(tc, outside, make([]byte, copyBuffer))
	_ = tc.Close()
	_ = outside.Close()
}

// Accept returns the plaintext end of the next handshaken connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.errMu.Lock()
		defer l.errMu.Unlock()
		if l.accErr != nil {
			return nil, l.accErr
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already handed out live on.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// peerConn is one end of the pair, showing the TCP connection's addresses
// (rate limits and logs read RemoteAddr). Its SyscallConn is the pair's
// descriptor, which the hub writes to and polls.
type peerConn struct {
	*net.UnixConn
	local, remote net.Addr
	outer         net.Conn
}

// NetConn is the connection the inner listener accepted, beneath TLS (as
// tls.Conn's): connlimit finds its own mark on it.
func (p *peerConn) NetConn() net.Conn { return p.outer }

func (p *peerConn) LocalAddr() net.Addr  { return p.local }
func (p *peerConn) RemoteAddr() net.Addr { return p.remote }

func socketPair() (*net.UnixConn, *net.UnixConn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	a, err := fileConn(fds[0])
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	b, err := fileConn(fds[1])
	if err != nil {
		_ = a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

func fileConn(fd int) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), "tls-pair")
	defer f.Close() // FileConn keeps a duplicate
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	return c.(*net.UnixConn), nil
}
