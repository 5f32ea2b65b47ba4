package e2e

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/signal-notify/signal/internal/testkit"
)

// The console shows when the token expires, refreshes it on the open
// connection, and says so when a token expired (4001) instead of
// reconnecting with it.
func TestConsoleRefreshesTheTokenOfItsConnection(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	b := startBrowser(t, in)
	b.do("open the console", chromedp.Navigate(in.URL()+"/console/"), chromedp.WaitVisible(chromedp.ID("token")))

	// Tokens are set directly (typing one is slow on a busy machine, and
	// these expire in seconds).
	setToken := func(tok string) { evalJS[bool](b, `(byId("token").value = `+js(tok)+`, true)`) }
	setToken(signToken(t, "u1", 10*time.Second))
	b.do("connect", chromedp.Click(chromedp.ID("connect")))
	b.waitFor("the welcome", `byId("state").dataset.state === "connected" && byId("token-expires").textContent.startsWith("20")`)
	first := evalJS[string](b, `byId("token-expires").textContent`)

	setToken(signToken(t, "u1", time.Hour))
	b.do("refresh with a longer token", chromedp.Click(chromedp.ID("refresh-token")))
	b.waitFor("the new expiry", `byId("token-expires").textContent !== `+js(first))
	exp, err := time.Parse(time.RFC3339, first)
	if err != nil {
		t.Fatalf("token expires %q: %v", first, err)
	}
	time.Sleep(time.Until(exp) + 2*time.Second) // past the first token's exp
	if state := evalJS[string](b, `byId("state").dataset.state`); state != "connected" {
		t.Errorf("after the refresh and the first token's exp the console is %s", state)
	}

	setToken(signToken(t, "u1", 2*time.Second))
	b.do("reconnect with a short token", chromedp.Click(chromedp.ID("connect")))
	b.waitFor("the expiry to be reported", `byId("state").textContent.includes("4001")`)
	if state := evalJS[string](b, `byId("state").dataset.state`); state != "disconnected" {
		t.Errorf("after 4001 the console is %s, want disconnected", state)
	}
	b.checkClean(in)
}
