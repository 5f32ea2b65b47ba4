package e2e

// The harness of the JavaScript client's tests (jsclient_test.go): an app
// server in front of the instances, as a site that embeds the client would
// have (the pages, a token route, and the Signal routes proxied to whichever
// instance answers), and the agent (clients/js/test/e2e/agent.mjs) that runs
// clients in Node and in Chromium tabs.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/testkit"
)

// jsDir is clients/js, with its node_modules and dist: make test installs
// and builds them (scripts/ensure-js.sh).
func jsDir(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("../../clients/js")
	_, errNode := exec.LookPath("node")
	_, errMods := os.Stat(filepath.Join(dir, "node_modules", "puppeteer-core", "package.json"))
	_, errDist := os.Stat(filepath.Join(dir, "dist", "index.js"))
	if errNode != nil || errMods != nil || errDist != nil {
		msg := "node, clients/js/node_modules or clients/js/dist missing: run scripts/ensure-js.sh (make test does)"
		if os.Getenv("SIGNAL_INTEROP") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// appServer is the site: /signal-token mints a token (sub, ttl), /app/ the
// pages and the package's dist, everything else goes to an instance.
type appServer struct {
	t         *testing.T
	srv       *httptest.Server
	mu        sync.Mutex
	backends  []string
	next      int
	pages     map[string]string // extra pages by path, built by the test
	installed string            // a folder served at /app/installed/ (an npm install)
}

func newAppServer(t *testing.T, backends ...string) *appServer {
	t.Helper()
	dir := jsDir(t)
	a := &appServer{t: t, backends: backends, pages: map[string]string{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "signal-instance"
		},
		Transport: &http.Transport{DisableKeepAlives: true, DialContext: a.dial},
		ErrorLog:  nil,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "no instance answers: "+err.Error(), http.StatusBadGateway)
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/signal-token", func(w http.ResponseWriter, r *http.Request) {
		sub := r.URL.Query().Get("sub")
		if sub == "" {
			sub = "u1"
		}
		ttl := time.Hour
		if s := r.URL.Query().Get("ttl"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			ttl = d
		}
		tok, err := auth.Sign(testkit.JWTSecret, sub, nil, ttl)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, tok)
	})
	mux.Handle("/app/dist/", http.StripPrefix("/app/dist/", http.FileServer(http.Dir(filepath.Join(dir, "dist")))))
	mux.HandleFunc("/app/installed/", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		root := a.installed
		a.mu.Unlock()
		if root == "" {
			http.NotFound(w, r)
			return
		}
		http.StripPrefix("/app/installed/", http.FileServer(http.Dir(root))).ServeHTTP(w, r)
	})
	files := http.StripPrefix("/app/", http.FileServer(http.Dir(filepath.Join(dir, "test", "e2e"))))
	mux.HandleFunc("/app/", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		page, ok := a.pages[r.URL.Path]
		a.mu.Unlock()
		if ok {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
			return
		}
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/", proxy)
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *appServer) URL() string { return a.srv.URL }

// page serves html at path (below /app/).
func (a *appServer) page(path, html string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pages[path] = html
}

// setBackends replaces the instances (a restart moves one to a new port).
func (a *appServer) setBackends(addrs ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.backends = addrs
}

// dial connects to the next instance that accepts, round robin: a killed
// one is skipped, as a load balancer's health check would.
func (a *appServer) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	a.mu.Lock()
	addrs := append([]string(nil), a.backends...)
	start := a.next
	a.next++
	a.mu.Unlock()
	var last error = fmt.Errorf("no instance")
	for i := range addrs {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, network, addrs[(start+i)%len(addrs)])
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// jsEvent is one line the agent printed.
type jsEvent struct {
	Ev, Name, ID, State, Role, Code, Message, Text, Reason, Error string
	Pos, CloseCode                                                *int
	Seq                                                           int
	Result                                                        json.RawMessage
	Counts                                                        *jsCounts
}

type jsCounts struct {
	Unread, Unseen, Total int
}

type jsSnapshot struct {
	State, Role string
	Cursor      *string
	Loaded      bool
	Counts      *jsCounts
	Items       []struct {
		ID             string
		IsRead, IsSeen bool
	}
	Stats struct {
		Reconnects, Repeats, Gaps, Resets, Refreshes, Applied int
		Closes                                                map[string]int
	}
}

// jsAgent is a running agent.mjs.
type jsAgent struct {
	t      *testing.T
	stdin  io.WriteCloser
	mu     sync.Mutex
	events []jsEvent
	seq    int
	wait   map[int]chan jsEvent
	exited chan struct{}
}

func startAgent(t *testing.T, base string) *jsAgent {
	t.Helper()
	dir := jsDir(t)
	cmd := exec.Command("node", filepath.Join(dir, "test", "e2e", "agent.mjs"), base)
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
		t.Fatalf("node agent: %v", err)
	}
	a := &jsAgent{t: t, stdin: stdin, wait: map[int]chan jsEvent{}, exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(a.exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var e jsEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Logf("agent: %s", sc.Text())
				continue
			}
			switch e.Ev {
			case "ready":
				close(ready)
				continue
			case "done":
				a.mu.Lock()
				ch := a.wait[e.Seq]
				delete(a.wait, e.Seq)
				a.mu.Unlock()
				if ch != nil {
					ch <- e
				}
				continue
			case "console":
				t.Logf("agent %s console: %s", e.Name, e.Text)
			}
			a.mu.Lock()
			a.events = append(a.events, e)
			a.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stdin.Close() // the agent quits when its input ends
		select {
		case <-a.exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		cmd.Wait()
	})
	select {
	case <-ready:
	case <-a.exited:
		t.Fatal("the agent exited before it was ready")
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not start in 30s")
	}
	return a
}

// do runs a command and returns its result; an error fails the test.
func (a *jsAgent) do(cmd map[string]any) json.RawMessage {
	a.t.Helper()
	a.mu.Lock()
	a.seq++
	seq := a.seq
	ch := make(chan jsEvent, 1)
	a.wait[seq] = ch
	a.mu.Unlock()
	cmd["seq"] = seq
	line, _ := json.Marshal(cmd)
	if _, err := a.stdin.Write(append(line, '\n')); err != nil {
		a.t.Fatalf("agent %v: %v", cmd["cmd"], err)
	}
	select {
	case e := <-ch:
		if e.Error != "" {
			a.t.Fatalf("agent %v %v: %s", cmd["cmd"], cmd["name"], e.Error)
		}
		return e.Result
	case <-a.exited:
		a.t.Fatalf("the agent exited during %v", cmd["cmd"])
	case <-time.After(90 * time.Second):
		a.t.Fatalf("agent %v %v: no answer in 90s", cmd["cmd"], cmd["name"])
	}
	return nil
}

func (a *jsAgent) snapshot(name string) jsSnapshot {
	a.t.Helper()
	var s jsSnapshot
	if err := json.Unmarshal(a.do(map[string]any{"cmd": "snapshot", "name": name}), &s); err != nil {
		a.t.Fatal(err)
	}
	return s
}

// seen counts the notification events of a client by id.
func (a *jsAgent) seen(name string) map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[string]int{}
	for _, e := range a.events {
		if e.Ev == "notification" && e.Name == name {
			m[e.ID]++
		}
	}
	return m
}

// eventsOf lists a client's events of one kind.
func (a *jsAgent) eventsOf(name, ev string) []jsEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []jsEvent
	for _, e := range a.events {
		if e.Name == name && e.Ev == ev {
			out = append(out, e)
		}
	}
	return out
}

// waitState waits until the client is in state.
func (a *jsAgent) waitState(name, state string, timeout time.Duration) {
	a.t.Helper()
	testkit.Eventually(a.t, timeout, name+" "+state, func() bool { return a.snapshot(name).State == state })
}

// storedIDs are recipient's notification ids in the database.
func storedIDs(t *testing.T, env *testkit.Env, recipient string) map[string]bool {
	t.Helper()
	rows, err := env.Store.Pool.Query(context.Background(), `SELECT id::text FROM notifications WHERE recipient_id = $1`, recipient)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	return ids
}

// compareSeen says what a client's notification events lack or repeat
// against the stored ids ("" when they match exactly).
func compareSeen(seen map[string]int, stored map[string]bool) string {
	var missing, repeated, extra int
	for id := range stored {
		if seen[id] == 0 {
			missing++
		}
	}
	for id, n := range seen {
		if n > 1 {
			repeated++
		}
		if !stored[id] {
			extra++
		}
	}
	if missing+repeated+extra == 0 {
		return ""
	}
	return fmt.Sprintf("%d stored, %d seen: %d missing, %d seen more than once, %d not stored", len(stored), len(seen), missing, repeated, extra)
}

// serverCounts is recipient's GET /notifications/counts.
func serverCounts(t *testing.T, base, recipient string) jsCounts {
	t.Helper()
	code, body := call(t, "GET", base+"/notifications/counts?recipientId="+recipient, testkit.APIKey, nil)
	if code != 200 {
		t.Fatalf("counts: %d %v", code, body)
	}
	n := func(k string) int { f, _ := body[k].(float64); return int(f) }
	return jsCounts{Unread: n("unread"), Unseen: n("unseen"), Total: n("total")}
}

// waitSameCounts waits until each named client shows the server's counts,
// read again each time: a change still in flight (a call of the client
// that has not answered yet) moves them, and the clients must follow.
func waitSameCounts(t *testing.T, a *jsAgent, base, recipient string, timeout time.Duration, names ...string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		want := serverCounts(t, base, recipient)
		var got []string
		same := true
		for _, n := range names {
			s := a.snapshot(n)
			same = same && sameCounts(s, want)
			got = append(got, fmt.Sprintf("%s %+v", n, s.Counts))
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts after %s: %s; the server's %+v", timeout, strings.Join(got, ", "), want)
		}
	}
}

// sameCounts: the client's counts are the server's.
func sameCounts(s jsSnapshot, want jsCounts) bool {
	return s.Counts != nil && *s.Counts == want
}

var _ = strings.TrimSpace
