package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/signal-notify/signal/internal/testkit"
)

// chromiumPath is Debian's Chromium; scripts/ensure-chromium.sh installs it.
const chromiumPath = "/usr/bin/chromium"

// pageWait bounds every wait on the page.
const pageWait = 20 * time.Second

// TestConsoleInChromium drives the web console in headless Chromium against
// a real instance: connect with a token, see a produced notification, join
// and leave a room, read the status with an API key and send broadcasts.
func TestConsoleInChromium(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	b := startBrowser(t, in)
	base := in.URL() + "/socket/websocket/clients"

	// /console redirects to the page, served with its security headers.
	resp, err := http.Get(in.URL() + "/console")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/console/" || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("GET /console ended at %s with %d, CSP %q", resp.Request.URL, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}

	b.do("open the console", chromedp.Navigate(in.URL()+"/console/"), chromedp.WaitVisible(chromedp.ID("token")))
	if title := runAction(b, chromedp.Title()); title != "Signal console" {
		t.Errorf("title %q", title)
	}

	// Connect with a token: the welcome shows the client id and its room.
	b.do("connect", chromedp.SendKeys(chromedp.ID("token"), testkit.Token(t, "u1", "ops/*")), chromedp.Click(chromedp.ID("connect")))
	b.waitFor("the welcome", `byId("state").dataset.state === "connected" && byId("client-id").textContent.length > 8`)
	clientID := evalJS[string](b, `byId("client-id").textContent`)
	_, clients := call(t, "GET", base, testkit.APIKey, nil)
	if raw, _ := json.Marshal(clients); !strings.Contains(string(raw), `"id":"`+clientID+`"`) || !strings.Contains(string(raw), `"subject":"u1"`) {
		t.Errorf("the page shows client id %q; the server lists %s", clientID, raw)
	}
	b.waitFor("its own room in the list", `hasRoom("signal/notification/u1")`)

	// A produced notification appears as a card.
	testkit.Produce(t, testkit.Producer(t, env.Broker), testkit.Message("users", []string{"u1"}, nil))
	const content = "Alice completed a payment for Ticket"
	b.waitFor("the notification card", `cards().some(c => c.querySelector(".content").textContent === `+js(content)+`)`)
	_, inbox := call(t, "GET", in.URL()+"/notifications?recipientId=u1", testkit.APIKey, nil)
	items, _ := inbox["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("inbox %v", inbox)
	}
	stored := items[0].(map[string]any)
	id := stored["id"].(string)
	card := evalJS[map[string]string](b, `(() => { const c = cards()[0]; const f = k => c.querySelector("dd." + k).textContent;
		return {id: c.dataset.id, type: f("type"), actionUrl: f("actionUrl"), room: c.dataset.room}; })()`)
	if card["id"] != id || card["type"] != "PAYMENT_SUCCESS" || card["room"] != "signal/notification/u1" || card["actionUrl"] == "" {
		t.Errorf("card %v, want id %s, type PAYMENT_SUCCESS, room signal/notification/u1 and an actionUrl", card, id)
	}

	// The same notification pushed again is dropped; a marker sent after it
	// shows that it arrived.
	room := base + "/rooms/" + url.PathEscape("signal/notification/u1") + "/send"
	if code, body := call(t, "POST", room, testkit.APIKey, map[string]any{"topic": "observation/signal/notification/created", "data": stored}); code != 200 {
		t.Fatalf("push the notification again: %d %v", code, body)
	}
	if code, body := call(t, "POST", room, testkit.APIKey, map[string]any{"topic": "test/marker"}); code != 200 {
		t.Fatalf("marker: %d %v", code, body)
	}
	b.waitFor("the marker", `entries("test/marker").length === 1`)
	if n := evalJS[int](b, `cards().filter(c => c.dataset.id === `+js(id)+`).length`); n != 1 {
		t.Errorf("%d cards for notification %s, want 1 (repeats are dropped)", n, id)
	}
	if dupes := evalJS[string](b, `byId("log-dupes").textContent`); !strings.HasPrefix(dupes, "1 ") {
		t.Errorf("repeats counter %q", dupes)
	}

	// Join a room, receive a frame in it (shown as text, never as markup),
	// and leave it.
	b.do("join ops/alerts", chromedp.SendKeys(chromedp.ID("room"), "ops/alerts"), chromedp.Click(chromedp.ID("join")))
	b.waitFor("ops/alerts in the list", `hasRoom("ops/alerts")`)
	const markup = `<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>`
	if code, body := call(t, "POST", base+"/rooms/"+url.PathEscape("ops/alerts")+"/send", testkit.APIKey, map[string]any{"topic": "ops/page", "data": map[string]string{"who": markup}}); code != 200 {
		t.Fatalf("room send: %d %v", code, body)
	}
	b.waitFor("the room frame", `entries("ops/page").some(e => e.dataset.room === "ops/alerts" && JSON.parse(e.querySelector("pre").textContent).who === `+js(markup)+`)`)
	if bad := evalJS[bool](b, `window.pwned === 1 || document.querySelector("#log img, #log script") !== null`); bad {
		t.Error("server data became markup in the page")
	}
	b.do("leave ops/alerts", chromedp.Click(chromedp.CSS(`#rooms button[data-room="ops/alerts"]`)))
	b.waitFor("ops/alerts gone from the list", `!hasRoom("ops/alerts") && entries("signal/system/left").length === 1`)

	// With the API key, the status panel shows this instance ready.
	b.do("use the API key", chromedp.SendKeys(chromedp.ID("apikey"), testkit.APIKey), chromedp.Click(chromedp.ID("apikey-use")))
	b.waitFor("the status panel", `byId("status").dataset.ready === "true"`)
	status := evalJS[map[string]string](b, `({ready: byId("status-ready").textContent, instance: byId("status-instance").textContent,
		local: byId("status-local").textContent, total: byId("status-total").textContent, instances: byId("status-instances").textContent,
		lag: byId("status-lag").textContent, dead: byId("status-dead").textContent})`)
	if status["ready"] != "ready" || status["instance"] != in.Info.InstanceID || status["local"] != "1" || status["total"] != "1" ||
		status["instances"] != "1" || !strings.HasPrefix(status["lag"], "0") || !strings.HasPrefix(status["dead"], "0") {
		t.Errorf("status panel %v, want instance %s ready with 1 connection, no lag, no dead letters", status, in.Info.InstanceID)
	}
	if bad := evalJS[bool](b, `localStorage.length !== 0 || location.href.includes(`+js(testkit.APIKey)+`) || sessionStorage.getItem("signal.console.apikey") !== `+js(testkit.APIKey)); bad {
		t.Error("the API key must live in sessionStorage only, never in localStorage or the URL")
	}

	// The client list: every client of every instance, a page at a time.
	b.waitFor("the page's own client in the list", `byId("clients-range").dataset.total === "1" && clientRows().includes(`+js(clientID)+`)`)
	var bulk []*testkit.Client
	for i := range 22 {
		c := testkit.Dial(t, in.WSURL(), testkit.Token(t, fmt.Sprintf("bulk-%02d", i)))
		c.Welcome()
		bulk = append(bulk, c)
	}
	b.waitFor("23 clients, the first 20 shown", `byId("clients-range").textContent === "1–20 of 23" && clientRows().length === 20`)
	row := evalJS[[]string](b, `[...document.querySelectorAll("#clients-table tbody tr")].find(tr => tr.dataset.client === `+js(clientID)+`).__cells()`)
	if len(row) != 5 || row[0] != clientID || row[1] != "u1" || row[2] != "signal/notification/u1" || row[3] != in.Info.InstanceID || !strings.HasPrefix(row[4], "20") {
		t.Errorf("the page's own row %q, want id, subject, rooms, instance, connected since", row)
	}
	b.do("next page", chromedp.Click(chromedp.ID("clients-next")))
	b.waitFor("the last 3 clients", `byId("clients-range").textContent === "21–23 of 23" && clientRows().length === 3 && byId("clients-next").disabled`)
	b.do("previous page", chromedp.Click(chromedp.ID("clients-prev")))
	b.waitFor("the first page again", `byId("clients-range").textContent === "1–20 of 23" && clientRows()[0] === `+js(clientID))
	for _, c := range bulk {
		c.Close()
	}
	b.waitFor("the bulk clients gone from the list", `byId("clients-range").dataset.total === "1"`)
	if owner := evalJS[string](b, `document.querySelector("#status-partitions tbody tr td:last-child").textContent`); owner != in.Info.InstanceID && !strings.Contains(owner, "not known yet") {
		t.Errorf("the partition table names %q, want the instance", owner)
	}

	// A test broadcast reaches every client, the page's own socket included.
	watcher := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u2"))
	watcher.Welcome()
	b.broadcast("console/test", `{"hello": "from the test"}`)
	b.waitFor("the broadcast sent", `byId("broadcast-result").dataset.state === "ok"`)
	b.waitFor("the broadcast in the log", `entries("console/test").some(e => JSON.parse(e.querySelector("pre").textContent).hello === "from the test")`)
	if f := watcher.Expect("console/test"); string(f.Data) != `{"hello":"from the test"}` {
		t.Errorf("watcher got %s", f.Data)
	}

	// Bad JSON is refused on the page, and nothing is sent.
	posts := b.countRequests("POST " + base + "/broadcast")
	b.broadcast("console/bad", `{"hello":`)
	b.waitFor("the JSON error", `byId("broadcast-result").dataset.state === "error" && byId("broadcast-result").textContent.includes("not valid JSON")
		&& byId("broadcast-data").getAttribute("aria-invalid") === "true"`)
	// An API error shows the API's message.
	b.do("long topic", chromedp.SetValue(chromedp.ID("broadcast-topic"), strings.Repeat("t", 300)), chromedp.SetValue(chromedp.ID("broadcast-data"), "1"),
		chromedp.Click(chromedp.ID("broadcast-send")))
	b.waitFor("the API's error", `byId("broadcast-result").dataset.state === "error" && byId("broadcast-result").textContent.includes("topic is longer than 256 bytes")`)
	b.broadcast("console/after", `"ok"`)
	b.waitFor("the last broadcast", `entries("console/after").length === 1`)
	if f := watcher.Next(10 * time.Second); f.Topic != "console/after" {
		t.Errorf("after the bad JSON the watcher got %s %s, want console/after", f.Topic, f.Data)
	}
	if n := b.countRequests("POST " + base + "/broadcast"); n != posts+2 {
		t.Errorf("%d broadcast requests since the bad JSON, want 2 (the long topic and the last one)", n-posts)
	}
	if n := evalJS[int](b, `entries("console/bad").length`); n != 0 {
		t.Errorf("console/bad is in the log %d times", n)
	}

	// At 1,400 × 900 nothing is cut off: no box clips or scrolls sideways,
	// nothing runs past the page, and every placeholder fits its box.
	b.do("viewport", chromedp.EmulateViewport(1400, 900))
	if cut := evalJS[[]string](b, cutOff); len(cut) > 0 {
		t.Errorf("cut off at 1400×900:\n%s", strings.Join(cut, "\n"))
	}
	b.checkClean(in)
	dir := os.Getenv("SIGNAL_CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	b.screenshots(dir)
}

// cutOff lists what the page shows only in part.
const cutOff = `(() => {
	const name = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.split(" ").join(".") : "");
	const out = [];
	const page = document.documentElement;
	if (page.scrollWidth > page.clientWidth + 1) out.push("the page scrolls sideways: " + page.scrollWidth + " > " + page.clientWidth);
	for (const e of document.querySelectorAll("body *")) {
		const s = getComputedStyle(e);
		if (s.display === "none" || e.closest("[hidden]")) continue;
		// (A field scrolls the value typed in it: its placeholder is checked below.)
		if (s.overflowX !== "visible" && !["INPUT", "TEXTAREA"].includes(e.tagName) && e.scrollWidth > e.clientWidth + 1) out.push(name(e) + " clips or scrolls its content: " + e.scrollWidth + " > " + e.clientWidth);
		const r = e.getBoundingClientRect();
		if (r.right > page.clientWidth + 1) out.push(name(e) + " runs past the page: " + r.right);
	}
	const ctx = document.createElement("canvas").getContext("2d");
	for (const i of document.querySelectorAll("input[placeholder]")) {
		const s = getComputedStyle(i);
		ctx.font = s.font;
		const room = i.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
		if (ctx.measureText(i.placeholder).width > room) out.push(name(i) + " cuts its placeholder " + JSON.stringify(i.placeholder));
	}
	return out;
})()`

// browser is a headless Chromium tab with what it saw: requests, and errors
// of the page (exceptions, CSP violations).
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	requests []string
	problems []string
	output   lockedBuffer
}

// helpers are defined in the page for the predicates.
const helpers = `window.byId = id => document.getElementById(id);
window.entries = topic => [...document.querySelectorAll("#log > li")].filter(e => e.dataset.topic === topic);
window.cards = () => [...document.querySelectorAll("#log > li.card")];
window.hasRoom = r => [...document.querySelectorAll("#rooms li[data-room]")].some(li => li.dataset.room === r);
window.clientRows = () => [...document.querySelectorAll("#clients-table tbody tr")].map(tr => tr.dataset.client);
HTMLTableRowElement.prototype.__cells = function () { return [...this.cells].map(c => c.textContent); };`

func startBrowser(t *testing.T, in *testkit.Instance) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the console test needs Debian's Chromium at %s (%v): run scripts/ensure-chromium.sh", chromiumPath, err)
	}
	b := &browser{t: t}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), // /dev/shm is small in containers
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(&b.output),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for Chromium to exit, before t.TempDir is removed
	})
	b.ctx = ctx
	// The first run starts the browser and lives as long as it: bound it
	// with a timer, not a context deadline.
	timer := time.AfterFunc(pageWait, cancelTab)
	err := chromedp.Do(ctx)
	if !timer.Stop() {
		t.Fatalf("Chromium did not start within %s: %v\n%s", pageWait, err, chromiumOutput(b.output.String()))
	}
	if err != nil {
		t.Fatalf("start Chromium: %v\n%s", err, chromiumOutput(b.output.String()))
	}
	return b
}

func (b *browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, e.Request.Method+" "+e.Request.URL)
	case *network.EventWebSocketCreated:
		b.requests = append(b.requests, "WS "+e.URL)
	case *runtime.EventExceptionThrown:
		msg := e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
		b.problems = append(b.problems, fmt.Sprintf("exception at %s:%d: %s", e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber, msg))
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError {
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			b.problems = append(b.problems, "console.error: "+strings.Join(parts, " "))
		}
	case *log.EventEntryAdded:
		// 4xx answers are logged too ("Failed to load resource"): the test
		// causes one on purpose. Anything about the security policy is a bug.
		if e.Entry.Source == log.EntrySourceSecurity || strings.Contains(e.Entry.Text, "Content Security Policy") {
			b.problems = append(b.problems, "security: "+e.Entry.Text)
		}
	}
}

func (b *browser) countRequests(prefix string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, r := range b.requests {
		if r == prefix || strings.HasPrefix(r, prefix+"?") {
			n++
		}
	}
	return n
}

// checkClean fails on page errors and on any request to another host.
func (b *browser) checkClean(in *testkit.Instance) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("page error: %s", p)
	}
	for _, r := range b.requests {
		_, u, _ := strings.Cut(r, " ")
		if !strings.HasPrefix(u, in.URL()+"/") && !strings.HasPrefix(u, in.WSURL()+"?") && !strings.HasPrefix(u, "data:") {
			b.t.Errorf("request to another host: %s", r)
		}
	}
	if len(b.requests) < 4 {
		b.t.Errorf("only %d requests were seen: %v", len(b.requests), b.requests)
	}
}

// do runs actions within pageWait.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, pageWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v%s", what, err, b.page())
	}
}

// waitFor waits until the JavaScript predicate holds, within pageWait.
func (b *browser) waitFor(what, predicate string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, pageWait+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { `+helpers+` return !!(`+predicate+`); })()`,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(pageWait)))
	if err != nil {
		b.t.Fatalf("waiting %s for %s: %v%s", pageWait, what, err, b.page())
	}
}

// broadcast fills the test broadcast form and sends it.
func (b *browser) broadcast(topic, data string) {
	b.t.Helper()
	b.do("broadcast "+topic,
		clearField("broadcast-topic"), chromedp.SendKeys(chromedp.ID("broadcast-topic"), topic),
		clearField("broadcast-data"), chromedp.SendKeys(chromedp.ID("broadcast-data"), data),
		chromedp.Click(chromedp.ID("broadcast-send")))
}

// screenshots saves the page in light and dark colours to dir, to look at.
func (b *browser) screenshots(dir string) {
	b.t.Helper()
	b.do("viewport", chromedp.EmulateViewport(1400, 900))
	for _, scheme := range []string{"light", "dark"} {
		b.do(scheme+" colours", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
			})
			return err
		}))
		png := runAction(b, chromedp.FullScreenshot(100))
		name := filepath.Join(dir, "console-"+scheme+".png")
		if err := os.WriteFile(name, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
		b.t.Logf("screenshot: %s", name)
	}
}

// clearField empties an input or a textarea (chromedp.Clear and SetValue
// with "" fail on a textarea that was typed into).
func clearField(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.getElementById(` + js(id) + `).value = ""`)
}

// page describes the page for a failure message.
func (b *browser) page() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 3000)`))
	if err != nil {
		text = "(cannot read the page: " + err.Error() + ")"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprintf("\n--- page text ---\n%s\n--- page errors ---\n%s\n--- chromium output ---\n%s",
		text, strings.Join(b.problems, "\n"), chromiumOutput(b.output.String()))
}

func runAction[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, pageWait)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%v%s", err, b.page())
	}
	return v
}

// evalJS evaluates an expression (with the helpers) and decodes its value.
func evalJS[T any](b *browser, expr string) T {
	b.t.Helper()
	return runAction(b, chromedp.Evaluate[T](`(() => { `+helpers+` return (`+expr+`); })()`))
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// chromiumOutput is the end of Chromium's output without its complaints
// about the missing D-Bus, which every run on a server has.
func chromiumOutput(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "dbus") {
			keep = append(keep, l)
		}
	}
	if len(keep) > 30 {
		keep = keep[len(keep)-30:]
	}
	return strings.Join(keep, "\n")
}

// lockedBuffer collects Chromium's output from its goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
