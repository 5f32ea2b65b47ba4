//go:build !linux

package hub

// poller is Linux-only; elsewhere each connection has a reading goroutine,
// kept shallow while the connection is idle.
type poller struct{}

func newPoller(*Hub) *poller     { return nil }
func (p *poller) forget(*Client) {}
func (p *poller) close()         {}

func (h *Hub) watch(c *Client) {
	if !c.reading.CompareAndSwap(false, true) {
		return // one ReadLoop per connection
	}
	go func() {
		c.idle()
		c.socket.ReadLoop()
	}()
}

func (h *Hub) afterClose(*Client) {}

// idle waits for the client's first data frame on a shallow stack,
// answering pings and noting pongs itself.
func (c *Client) idle() {
	if len(c.sc.pushback) > 0 {
		return
	}
	buf := make([]byte, 512)
	for {
		n, err := c.sc.Conn.Read(buf)
		if err != nil || n == 0 {
			return
		}
		used := c.controlFrames(buf[:n])
		if used < n {
			c.sc.pushback = append(c.sc.pushback, buf[used:n]...)
			return
		}
	}
}
