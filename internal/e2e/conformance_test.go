package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/launch"
	"github.com/signal-notify/signal/internal/testkit"
)

// Real clients against a real server: Chromium and Node's ws (both strict
// about the protocol and UTF-8) receive large frames and see each close
// code of docs/protocol.md: 1009 (a frame too large), 4001 (token expired),
// 3008 (too slow), 1001 (shutdown).

// largeSizes are the data sizes (characters) of the large frames sent.
var largeSizes = []int{200_000, 1_000_000}

// largeData is n characters, one of them not ASCII.
func largeData(n int) map[string]any {
	return map[string]any{"s": "é" + strings.Repeat("x", n-1)}
}

func sendRoom(t *testing.T, in *testkit.Instance, room, topic string, data any) {
	t.Helper()
	if code, body := call(t, "POST", in.URL()+"/socket/websocket/clients/rooms/"+url.PathEscape(room)+"/send", testkit.APIKey, map[string]any{"topic": topic, "data": data}); code != 200 {
		t.Fatalf("send to %s: %d %v", room, code, body)
	}
}

func signToken(t *testing.T, sub string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Sign(testkit.JWTSecret, sub, nil, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fillUntilSlow sends 1 MB frames to room until the server drops a client
// as slow (the counter passes before), and reports whether it did.
func fillUntilSlow(t *testing.T, in *testkit.Instance, room string, before float64) bool {
	for i := 0; i < 200; i++ {
		if metric(t, in, "signal_websocket_slow_clients_dropped_total") > before {
			return true
		}
		sendRoom(t, in, room, "fill", largeData(1_000_000))
	}
	return false
}

func TestNodeWsClientConformance(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	n := startNode(t)

	n.do(map[string]any{"cmd": "connect", "id": "big", "url": in.WSURL(), "token": testkit.Token(t, "n1")})
	n.wait("big", "open")
	n.waitMessage("big", "signal/system/welcome", -1)
	for _, size := range largeSizes {
		sendRoom(t, in, "signal/notification/n1", "large", largeData(size))
		n.waitMessage("big", "large", size)
	}
	t.Run("an inbound frame over max_message_bytes: 1009", func(t *testing.T) {
		n.do(map[string]any{"cmd": "send", "id": "big", "text": strings.Repeat("x", in.Config.WebSocket.MaxMessageBytes+1)})
		n.waitClose("big", 1009)
	})
	t.Run("the token expires: 4001", func(t *testing.T) {
		n.do(map[string]any{"cmd": "connect", "id": "exp", "url": in.WSURL(), "token": signToken(t, "n2", 2*time.Second)})
		n.wait("exp", "open")
		n.waitClose("exp", 4001)
	})
	t.Run("a client that does not read: 3008", func(t *testing.T) {
		before := metric(t, in, "signal_websocket_slow_clients_dropped_total")
		n.do(map[string]any{"cmd": "connect", "id": "slow", "url": in.WSURL(), "token": testkit.Token(t, "n3")})
		n.wait("slow", "open")
		n.waitMessage("slow", "signal/system/welcome", -1)
		n.do(map[string]any{"cmd": "pause", "id": "slow"})
		if !fillUntilSlow(t, in, "signal/notification/n3", before) {
			t.Fatal("the client was never dropped")
		}
		n.do(map[string]any{"cmd": "resume", "id": "slow"}) // it reads the frames, then the close
		n.waitClose("slow", 3008)
	})
	t.Run("shutdown: 1001", func(t *testing.T) {
		n.do(map[string]any{"cmd": "connect", "id": "last", "url": in.WSURL(), "token": testkit.Token(t, "n4")})
		n.wait("last", "open")
		n.waitMessage("last", "signal/system/welcome", -1)
		if err := in.Stop(); err != nil {
			t.Fatal(err)
		}
		n.waitClose("last", 1001)
	})
}

func TestChromiumConformance(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	b := startBrowser(t, in)
	b.do("open a page of the server", chromedp.Navigate(in.URL()+"/healthz"))
	evalJS[bool](b, `(() => {
		window.socks = {};
		window.openSock = (id, token) => {
			const s = {msgs: [], close: 0, bad: 0};
			const ws = new WebSocket(location.origin.replace("http", "ws") + "/socket/websocket?token=" + encodeURIComponent(token));
			ws.onmessage = e => {
				let f = {};
				try { f = JSON.parse(e.data); } catch (x) { s.bad++; }
				s.msgs.push({topic: f.topic, bytes: new TextEncoder().encode(e.data).length,
					dataLen: f.data && typeof f.data.s === "string" ? f.data.s.length : -1});
			};
			ws.onclose = e => { s.close = e.code; };
			s.ws = ws;
			socks[id] = s;
			return true;
		};
		window.got = (id, topic, len) => socks[id].msgs.some(m => m.topic === topic && (len < 0 || m.dataLen === len));
		// Blocks the page (so the browser stops reading its sockets) until
		// the server counts a slow client past before.
		window.blockUntilSlow = before => {
			const end = Date.now() + 30000;
			while (Date.now() < end) {
				const x = new XMLHttpRequest();
				x.open("GET", "/metrics", false);
				x.send();
				const m = /^signal_websocket_slow_clients_dropped_total (\S+)$/m.exec(x.responseText);
				if (m && Number(m[1]) > before) return true;
			}
			return false;
		};
		return true;
	})()`)
	open := func(id, token string) {
		t.Helper()
		evalJS[bool](b, `openSock(`+js(id)+`, `+js(token)+`)`)
		b.waitFor(id+"'s welcome", `got(`+js(id)+`, "signal/system/welcome", -1)`)
	}
	closeCode := func(id string, want int) {
		t.Helper()
		b.waitFor(fmt.Sprintf("%s to be closed", id), `socks[`+js(id)+`].close !== 0`)
		if got := evalJS[int](b, `socks[`+js(id)+`].close`); got != want {
			t.Errorf("%s closed with %d, want %d", id, got, want)
		}
	}

	open("big", testkit.Token(t, "c1"))
	for _, size := range largeSizes {
		sendRoom(t, in, "signal/notification/c1", "large", largeData(size))
		b.waitFor(fmt.Sprintf("a frame of %d characters", size), fmt.Sprintf(`got("big", "large", %d)`, size))
	}
	if bad := evalJS[int](b, `socks.big.bad`); bad != 0 {
		t.Errorf("%d frames were not JSON", bad)
	}
	t.Run("an inbound frame over max_message_bytes: 1009", func(t *testing.T) {
		evalJS[bool](b, fmt.Sprintf(`(socks.big.ws.send("x".repeat(%d)), true)`, in.Config.WebSocket.MaxMessageBytes+1))
		closeCode("big", 1009)
	})
	t.Run("the token expires: 4001", func(t *testing.T) {
		open("exp", signToken(t, "c2", 2*time.Second))
		closeCode("exp", 4001)
	})
	t.Run("a page that does not read: 3008", func(t *testing.T) {
		before := metric(t, in, "signal_websocket_slow_clients_dropped_total")
		open("slow", testkit.Token(t, "c3"))
		filled := make(chan bool, 1)
		go func() { filled <- fillUntilSlow(t, in, "signal/notification/c3", before) }()
		if !evalJS[bool](b, fmt.Sprintf(`blockUntilSlow(%g)`, before)) {
			t.Fatal("the page was never dropped as slow")
		}
		if !<-filled {
			t.Fatal("the server never dropped the page")
		}
		closeCode("slow", 3008)
	})
	t.Run("shutdown: 1001", func(t *testing.T) {
		open("last", testkit.Token(t, "c4"))
		if err := in.Stop(); err != nil {
			t.Fatal(err)
		}
		closeCode("last", 1001)
	})
}

// nodeClient is testdata/ws/wsclient.js: Node's ws, driven over stdin/stdout.
type nodeClient struct {
	t      *testing.T
	stdin  io.WriteCloser
	events chan nodeEvent
	mu     sync.Mutex
	log    []string
}

type nodeEvent struct {
	Ev, ID, Topic, Reason, Error string
	Code, Bytes, DataLen         int
	Binary                       bool
}

func startNode(t *testing.T) *nodeClient {
	t.Helper()
	dir, _ := filepath.Abs("testdata/ws")
	_, errNode := exec.LookPath("node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws", "package.json")); err != nil || errNode != nil {
		// As the Kafka interoperability test: make test requires it.
		msg := "node or its ws package missing: run scripts/ensure-interop.sh (make test does)"
		if os.Getenv("SIGNAL_INTEROP") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := launch.Command("node", "wsclient.js")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("node: %v", err)
	}
	n := &nodeClient{t: t, stdin: stdin, events: make(chan nodeEvent, 1024)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e nodeEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				n.events <- e
			}
		}
		close(n.events)
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return n
}

func (n *nodeClient) do(cmd map[string]any) {
	n.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := n.stdin.Write(append(b, '\n')); err != nil {
		n.t.Fatalf("node: %v", err)
	}
}

// next returns the next event of connection id that matches, failing on
// an unexpected close or a protocol error.
func (n *nodeClient) next(id string, match func(nodeEvent) bool) nodeEvent {
	n.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e, ok := <-n.events:
			if !ok {
				n.t.Fatal("node exited")
			}
			n.mu.Lock()
			n.log = append(n.log, fmt.Sprintf("%+v", e))
			n.mu.Unlock()
			if e.ID != id {
				continue
			}
			if match(e) {
				return e
			}
			if e.Ev == "close" || e.Ev == "error" && !strings.Contains(e.Error, "1009") {
				n.t.Fatalf("connection %s: %+v", id, e)
			}
		case <-timeout:
			n.t.Fatalf("connection %s: nothing expected within 30s; events: %v", id, n.log)
		}
	}
}

func (n *nodeClient) wait(id, ev string) nodeEvent {
	n.t.Helper()
	return n.next(id, func(e nodeEvent) bool { return e.Ev == ev })
}

func (n *nodeClient) waitMessage(id, topic string, dataLen int) {
	n.t.Helper()
	n.next(id, func(e nodeEvent) bool {
		return e.Ev == "message" && !e.Binary && e.Topic == topic && (dataLen < 0 || e.DataLen == dataLen)
	})
}

func (n *nodeClient) waitClose(id string, code int) {
	n.t.Helper()
	e := n.next(id, func(e nodeEvent) bool { return e.Ev == "close" })
	if e.Code != code {
		n.t.Errorf("connection %s closed with %d (%q), want %d", id, e.Code, e.Reason, code)
	}
}
