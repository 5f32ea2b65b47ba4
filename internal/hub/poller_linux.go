package hub

import (
	"errors"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller watches idle connections with one epoll instance, so a connection
// with nothing to say holds no goroutine at all. When one becomes readable
// (one-shot, level-triggered), a goroutine takes it: it answers pings and
// notes pongs with non-blocking reads and gives the connection back, or,
// at the first data frame (or end of stream), hands it to gws's ReadLoop
// for good. Go's own netpoller keeps its registration of the descriptor;
// epoll allows both.
type poller struct {
	h    *Hub
	epfd int

	mu   sync.Mutex
	keys map[uint32]*Client
	next uint32

	stop chan struct{}
	done chan struct{}
}

const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

func newPoller(h *Hub) *poller {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		h.log.Warn("no epoll: idle connections keep a goroutine each", "err", err)
		return nil
	}
	p := &poller{h: h, epfd: epfd, keys: map[uint32]*Client{}, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// watch starts reading c: through the poller, or a goroutine of its own.
func (h *Hub) watch(c *Client) {
	if c.reading.Load() {
		return // closed while opening: afterClose started its read loop
	}
	if h.beforeWatch != nil {
		h.beforeWatch(c)
	}
	if h.poll == nil || len(c.sc.pushback) > 0 || h.poll.add(c) != nil {
		// add fails on a connection closed meanwhile, whose afterClose may
		// have started its ReadLoop already: a second one would read
		// through the reader the first gave back (a nil pointer).
		if c.reading.CompareAndSwap(false, true) {
			go c.socket.ReadLoop()
		}
		return
	}
	if c.closed.Load() {
		h.poll.forget(c) // OnClose ran meanwhile: leave nothing behind
	}
}

// afterClose makes sure a connection closed by the server is finished (its
// ReadLoop ends with OnClose) even when no goroutine was reading it.
func (h *Hub) afterClose(c *Client) {
	if c.reading.CompareAndSwap(false, true) {
		h.poll.forget(c)
		go c.socket.ReadLoop()
	}
}

func (p *poller) add(c *Client) error {
	p.mu.Lock()
	for {
		p.next++
		if _, used := p.keys[p.next]; !used && p.next != 0 {
			break
		}
	}
	key := p.next
	p.keys[key] = c
	c.pollKey = key
	p.mu.Unlock()
	return p.ctl(c, unix.EPOLL_CTL_ADD)
}

// rearm waits for the next readiness of c.
func (p *poller) rearm(c *Client) error { return p.ctl(c, unix.EPOLL_CTL_MOD) }

func (p *poller) ctl(c *Client, op int) error {
	var cerr error
	err := c.raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: pollEvents, Fd: int32(c.pollKey)}
		cerr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		p.forget(c)
	}
	return err
}

// forget drops c: closing its descriptor removes it from the epoll set.
func (p *poller) forget(c *Client) {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.keys[c.pollKey] == c {
		delete(p.keys, c.pollKey)
	}
	p.mu.Unlock()
}

func (p *poller) close() {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.done
	_ = unix.Close(p.epfd) // nothing uses it any more: a close error changes nothing
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		n, err := unix.EpollWait(p.epfd, events, 200)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			p.h.log.Error("epoll wait failed; idle connections are read by goroutines from now on", "err", err)
			p.handOverAll()
			return
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			if c := p.keys[uint32(ev.Fd)]; c != nil {
				go c.readable()
			}
		}
		p.mu.Unlock()
	}
}

func (p *poller) handOverAll() {
	p.mu.Lock()
	list := make([]*Client, 0, len(p.keys))
	for _, c := range p.keys {
		list = append(list, c)
	}
	p.mu.Unlock()
	for _, c := range list {
		if c.reading.CompareAndSwap(false, true) {
			p.forget(c)
			go c.socket.ReadLoop()
		}
	}
}

// readable runs when an idle connection has something to read.
func (c *Client) readable() {
	if !c.reading.CompareAndSwap(false, true) {
		return
	}
	p := c.hub.poll
	buf := make([]byte, 512)
	for {
		n, err := rawRead(c.raw, buf)
		if errors.Is(err, syscall.EAGAIN) {
			// Nothing more for now: give the connection back to the poller.
			c.reading.Store(false)
			if p.rearm(c) == nil || !c.reading.CompareAndSwap(false, true) {
				return
			}
			break // cannot wait on it: read it the ordinary way
		}
		if err != nil || n == 0 {
			break // closed or failed: ReadLoop reports it
		}
		used := c.controlFrames(buf[:n])
		if used < n {
			c.sc.pushback = append(c.sc.pushback, buf[used:n]...)
			break
		}
		c.lastSeen.Store(time.Now().UnixNano())
	}
	p.forget(c)
	c.socket.ReadLoop()
}

// rawRead reads what is there without waiting (EAGAIN when nothing is).
func rawRead(rc syscall.RawConn, b []byte) (int, error) {
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), b)
			if rerr != syscall.EINTR {
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	return n, nil
}
