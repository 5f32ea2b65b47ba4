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

	b.do("connect", chromedp.SendKeys(chromedp.ID("token"), signToken(t, "u1", 8*time.Second)), chromedp.Click(chromedp.ID("connect")))
	b.waitFor("the welcome", `byId("state").dataset.state === "connected" && byId("token-expires").textContent.startsWith("20")`)
	first := evalJS[string](b, `byId("token-expires").textContent`)

	b.do("refresh with a longer token", clearField("token"), chromedp.SendKeys(chromedp.ID("token"), signToken(t, "u1", time.Hour)), chromedp.Click(chromedp.ID("refresh")))
	b.waitFor("the new expiry", `byId("token-expires").textContent !== `+js(first))
	exp, err := time.Parse(time.RFC3339, first)
	if err != nil {
		t.Fatalf("token expires %q: %v", first, err)
	}
	time.Sleep(time.Until(exp) + 2*time.Second) // past the first token's exp
	if state := evalJS[string](b, `byId("state").dataset.state`); state != "connected" {
		t.Errorf("after the refresh and the first token's exp the console is %s", state)
	}

	b.do("reconnect with a short token", clearField("token"), chromedp.SendKeys(chromedp.ID("token"), signToken(t, "u1", 2*time.Second)), chromedp.Click(chromedp.ID("connect")))
	b.waitFor("the expiry to be reported", `byId("state").textContent.includes("4001")`)
	if state := evalJS[string](b, `byId("state").dataset.state`); state != "disconnected" {
		t.Errorf("after 4001 the console is %s, want disconnected", state)
	}
	b.checkClean(in)
}
