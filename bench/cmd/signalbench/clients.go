package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/signal-notify/signal/internal/launch"
)

// poolOpts say how many WebSocket clients to start and how.
type poolOpts struct {
	name      string
	url       string
	n         int
	perProc   int // most connections per client process
	minProcs  int
	prefix    string // recipient ids are prefix+index
	slowEvery int    // every slowEvery-th client can be told to stop reading
	noRead    bool   // hostile: raw connections that never read a byte (4 KiB receive buffer)
	srcBase   int    // first source address is 127.0.0.<srcBase>
}

// pool is the client processes of one scenario and what they reported.
type pool struct {
	o     poolOpts
	procs []*clientProc

	mu        sync.Mutex
	bcast     map[int][]recv // broadcast id → receptions
	notif     []notifSample
	closed    int
	closeCode map[int]int
}

type recv struct {
	idx int
	r   int64
}

type notifSample struct {
	idx  int
	r, s int64
}

type clientProc struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	first, n  int
	src       string
	connected chan connectReport
	done      chan struct{}
	stderr    *tailBuffer
}

type connectReport struct {
	OK   int    `json:"ok"`
	Fail int    `json:"fail"`
	MS   int64  `json:"ms"`
	Err  string `json:"err"`
}

// connectStats sums the processes' connect reports.
type connectStats struct {
	OK, Fail int
	Elapsed  time.Duration
	Err      string
}

// startPool starts the client processes, spread over source addresses,
// and waits until every one has dialled all its connections.
func startPool(ctx context.Context, e *env, o poolOpts) (*pool, connectStats, error) {
	if o.perProc <= 0 {
		o.perProc = 5000
	}
	if o.srcBase == 0 {
		o.srcBase = 2
	}
	procs := max(o.minProcs, (o.n+o.perProc-1)/o.perProc, 1)
	p := &pool{o: o, bcast: map[int][]recv{}, closeCode: map[int]int{}}
	self, err := os.Executable()
	if err != nil {
		return nil, connectStats{}, err
	}
	start := time.Now()
	first := 0
	for k := 0; k < procs; k++ {
		n := o.n / procs
		if k < o.n%procs {
			n++
		}
		cp := &clientProc{first: first, n: n, src: "127.0.0." + strconv.Itoa(o.srcBase+k),
			connected: make(chan connectReport, 1), done: make(chan struct{}), stderr: &tailBuffer{max: 4096}}
		first += n
		cp.cmd = launch.Command(self, "client", "-url", o.url, "-src", cp.src, "-n", strconv.Itoa(n),
			"-first", strconv.Itoa(cp.first), "-prefix", o.prefix, "-slow-every", strconv.Itoa(o.slowEvery),
			"-noread="+strconv.FormatBool(o.noRead))
		cp.cmd.Stderr = cp.stderr
		stdout, err := cp.cmd.StdoutPipe()
		if err != nil {
			p.close()
			return nil, connectStats{}, err
		}
		if cp.stdin, err = cp.cmd.StdinPipe(); err != nil {
			p.close()
			return nil, connectStats{}, err
		}
		if err := cp.cmd.Start(); err != nil {
			p.close()
			return nil, connectStats{}, err
		}
		p.procs = append(p.procs, cp)
		go func() {
			p.read(cp, stdout)
			_ = cp.cmd.Wait()
			close(cp.done)
		}()
	}
	e.onClose(p.close)
	logf("%s: %d clients in %d processes from 127.0.0.%d…%d", o.name, o.n, procs, o.srcBase, o.srcBase+procs-1)
	var st connectStats
	timeout := time.After(5 * time.Minute)
	for _, cp := range p.procs {
		select {
		case r := <-cp.connected:
			st.OK += r.OK
			st.Fail += r.Fail
			if st.Err == "" {
				st.Err = r.Err
			}
		case <-cp.done:
			st.Fail += cp.n
			st.Err = "client process exited: " + cp.stderr.String()
		case <-timeout:
			return p, st, fmt.Errorf("%s: clients did not connect within 5 minutes", o.name)
		case <-ctx.Done():
			return p, st, ctx.Err()
		}
	}
	st.Elapsed = time.Since(start)
	logf("%s: %d connected, %d failed in %s %s", o.name, st.OK, st.Fail, st.Elapsed.Round(time.Millisecond), st.Err)
	return p, st, nil
}

// read parses one process's report lines.
func (p *pool) read(cp *clientProc, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		// The frequent lines, without a JSON decoder: the harness shares
		// the cores with the server too.
		if bytes.HasPrefix(line, []byte(`{"e":"b"`)) || bytes.HasPrefix(line, []byte(`{"e":"n"`)) {
			idx, ok1 := intAfter(line, `"i":`)
			r, ok2 := intAfter(line, `"r":`)
			if line[6] == 'b' {
				id, ok3 := intAfter(line, `"id":`)
				if ok1 && ok2 && ok3 {
					p.mu.Lock()
					p.bcast[int(id)] = append(p.bcast[int(id)], recv{int(idx), r})
					p.mu.Unlock()
					continue
				}
			} else if sent, ok3 := intAfter(line, `"s":`); ok1 && ok2 && ok3 {
				p.mu.Lock()
				p.notif = append(p.notif, notifSample{int(idx), r, sent})
				p.mu.Unlock()
				continue
			}
		}
		var ev struct {
			E    string `json:"e"`
			I    int    `json:"i"`
			R    int64  `json:"r"`
			S    int64  `json:"s"`
			ID   int    `json:"id"`
			Code int    `json:"code"`
			connectReport
		}
		if json.Unmarshal(line, &ev) != nil {
			continue
		}
		switch ev.E {
		case "b":
			p.mu.Lock()
			p.bcast[ev.ID] = append(p.bcast[ev.ID], recv{ev.I, ev.R})
			p.mu.Unlock()
		case "n":
			p.mu.Lock()
			p.notif = append(p.notif, notifSample{ev.I, ev.R, ev.S})
			p.mu.Unlock()
		case "c":
			p.mu.Lock()
			p.closed++
			p.closeCode[ev.Code]++
			p.mu.Unlock()
		case "connected":
			cp.connected <- ev.connectReport
		}
	}
}

// cpuSeconds is the CPU time all client processes used so far.
func (p *pool) cpuSeconds() float64 {
	t := 0.0
	for _, cp := range p.procs {
		t += cpuSeconds(cp.cmd.Process.Pid)
	}
	return t
}

// pids are the client processes.
func (p *pool) pids() []int {
	out := make([]int, 0, len(p.procs))
	for _, cp := range p.procs {
		out = append(out, cp.cmd.Process.Pid)
	}
	return out
}

// isSlow reports whether client idx is one of the slow-capable ones.
func (p *pool) isSlow(idx int) bool { return p.o.slowEvery > 0 && idx%p.o.slowEvery == 0 }

// slowCount is how many clients are slow-capable.
func (p *pool) slowCount() int {
	if p.o.slowEvery <= 0 {
		return 0
	}
	return (p.o.n + p.o.slowEvery - 1) / p.o.slowEvery
}

// command sends a line to every client process.
func (p *pool) command(cmd string) {
	for _, cp := range p.procs {
		_, _ = io.WriteString(cp.stdin, cmd+"\n")
	}
}

// waitBroadcast waits until want counted receptions of broadcast id arrived (or
// timeout) and returns them.
func (p *pool) waitBroadcast(ctx context.Context, id, want int, counted func(idx int) bool, timeout time.Duration) []recv {
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		n := 0
		for _, r := range p.bcast[id] {
			if counted(r.idx) {
				n++
			}
		}
		p.mu.Unlock()
		if n >= want || time.Now().After(deadline) || ctx.Err() != nil {
			// Reports are flushed every 50 ms: give stragglers that long.
			time.Sleep(120 * time.Millisecond)
			p.mu.Lock()
			out := append([]recv(nil), p.bcast[id]...)
			p.mu.Unlock()
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// takeNotif returns the notification samples so far and forgets them.
func (p *pool) takeNotif() []notifSample {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.notif
	p.notif = nil
	return out
}

// notifCount is how many notification samples are waiting.
func (p *pool) notifCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.notif)
}

// closedByServer reports connections the server closed, by close code.
func (p *pool) closedByServer() (int, map[int]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	codes := map[int]int{}
	for k, v := range p.closeCode {
		codes[k] = v
	}
	return p.closed, codes
}

// close asks the processes to quit, then kills those still running.
func (p *pool) close() {
	for _, cp := range p.procs {
		if cp.stdin != nil {
			_, _ = io.WriteString(cp.stdin, "quit\n")
			_ = cp.stdin.Close()
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, cp := range p.procs {
		if cp.cmd.Process == nil {
			continue
		}
		select {
		case <-cp.done:
		case <-time.After(time.Until(deadline)):
			_ = cp.cmd.Process.Kill()
			<-cp.done
		}
	}
	p.procs = nil
}

// tailBuffer keeps the last max bytes written (a child's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
