package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/signal-notify/signal/internal/testkit"
)

// The console shows the connected recipient's counts and the state of each
// notification card, and follows state changes made elsewhere.
func TestConsoleShowsInboxStates(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	b := startBrowser(t, in)
	u1 := testkit.Token(t, "u1")
	b.do("open the console", chromedp.Navigate(in.URL()+"/console/"), chromedp.WaitVisible(chromedp.ID("token")))
	b.do("connect", chromedp.SendKeys(chromedp.ID("token"), u1), chromedp.Click(chromedp.ID("connect")))
	b.waitFor("the counts", `byId("inbox-counts").textContent === "0 unread, 0 unseen, 0 in all"`)

	p := testkit.Producer(t, env.Broker)
	testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, nil), testkit.Message("users", []string{"u1"}, nil))
	b.waitFor("two cards, unread", `cards().length === 2 && cards().every(c => c.querySelector("dd.state").textContent === "unread")`)
	b.waitFor("the counts", `byId("inbox-counts").textContent === "2 unread, 2 unseen, 2 in all"`)
	id := evalJS[string](b, `cards()[0].dataset.id`)

	// Changes made through the API, as another device would.
	if code, _ := call(t, "POST", in.URL()+"/notifications/"+id+"/read", u1, nil); code != 200 {
		t.Fatal(code)
	}
	b.waitFor("the card read", `cards()[0].querySelector("dd.state").textContent === "read" && cards()[1].querySelector("dd.state").textContent === "unread"`)
	if code, _ := call(t, "POST", in.URL()+"/notifications/seen", u1, map[string]any{"all": true}); code != 200 {
		t.Fatal(code)
	}
	b.waitFor("the other card seen", `cards()[1].querySelector("dd.state").textContent === "unread, seen"`)
	if code, _ := call(t, "POST", in.URL()+"/notifications/"+id+"/archive", u1, nil); code != 200 {
		t.Fatal(code)
	}
	b.waitFor("the card archived", `cards()[0].querySelector("dd.state").textContent === "read, archived"`)
	b.waitFor("the counts", `byId("inbox-counts").textContent === "1 unread, 0 unseen, 1 in all"`)
}
