package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/apispec"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

// notifyCall sends POST /notifications with key (none when "") and
// checks the answer against api/openapi.yaml.
func notifyCall(t *testing.T, base, key string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/notifications", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+testkit.APIKey)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if err := apispec.CheckResponse(req, resp.StatusCode, resp.Header, raw); err != nil {
		t.Errorf("the answer breaks the API's contract: %v", err)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func idsOf(body map[string]any) []string {
	var out []string
	list, _ := body["ids"].([]any)
	for _, id := range list {
		out = append(out, id.(string))
	}
	slices.Sort(out)
	return out
}

// POST /notifications makes notifications as a Kafka record would, and
// one Idempotency-Key makes them once: sent to two instances at the same
// time, and again after a restart.
func TestRESTCreateMakesOneNotificationPerKeyAcrossInstancesAndRestarts(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	a := env.Serve(t, nil)
	b := env.Serve(t, nil)
	phone := testkit.Dial(t, b.WSURL(), testkit.Token(t, "u1"))
	phone.Welcome()

	const keys = 5
	answers := make([][2][]string, keys)
	var wg sync.WaitGroup
	for k := 0; k < keys; k++ {
		body := testkit.Message("users", []string{"u1", "u2"}, paid(fmt.Sprintf("rest-%d", k)))
		for i, in := range []*testkit.Instance{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, out := notifyCall(t, in.URL(), fmt.Sprintf("key-%d", k), body)
				if code != http.StatusAccepted {
					t.Errorf("key %d on instance %d: %d %v", k, i, code, out)
				}
				answers[k][i] = idsOf(out)
			}()
		}
	}
	wg.Wait()
	for k, ans := range answers {
		if len(ans[0]) != 2 || !slices.Equal(ans[0], ans[1]) {
			t.Errorf("key %d: the instances answered %v and %v, want the same two ids", k, ans[0], ans[1])
		}
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`); n != 2*keys {
		t.Fatalf("%d notifications, want %d (one per key and recipient)", n, 2*keys)
	}
	seen := map[string]bool{}
	for len(seen) < keys {
		f := phone.Expect("observation/signal/notification/created")
		if f.Pos == 0 {
			t.Fatalf("created frame without pos: %s", f.Data)
		}
		seen[notificationID(t, f)] = true
	}

	// After a restart of both, the same key still makes nothing.
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	c := env.Serve(t, nil)
	code, out := notifyCall(t, c.URL(), "key-0", testkit.Message("users", []string{"u1", "u2"}, paid("rest-0")))
	if code != http.StatusAccepted || !slices.Equal(idsOf(out), answers[0][0]) {
		t.Errorf("after a restart: %d %v, want the first ids %v", code, out, answers[0][0])
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`); n != 2*keys {
		t.Errorf("%d notifications after the repeat, want %d", n, 2*keys)
	}
}

func TestRESTCreateRefusesWhatARecordWouldBeADeadLetterFor(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	valid := testkit.Message("users", []string{"u1"}, nil)
	for _, tc := range []struct {
		name, key string
		body      []byte
		code      int
		errCode   string
	}{
		{"no key", "", valid, 400, "bad_request"},
		{"no occurredAt", "k1", testkit.Message("users", []string{"u1"}, func(m map[string]any) { delete(m, "occurredAt") }), 400, "missing_field"},
		{"not JSON", "k2", []byte("nope"), 400, "malformed_json"},
		{"expired", "k3", testkit.Message("users", []string{"u1"}, func(m map[string]any) {
			m["expiresAt"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		}), 400, "invalid_field"},
		{"org without members", "k4", testkit.Message("org", nil, nil), 400, "no_recipients"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := notifyCall(t, in.URL(), tc.key, tc.body)
			e, _ := out["error"].(map[string]any)
			if code != tc.code || e["code"] != tc.errCode {
				t.Errorf("%d %v, want %d %s", code, out, tc.code, tc.errCode)
			}
		})
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`); n != 0 {
		t.Errorf("%d notifications made by refused requests", n)
	}
	// A refused body took no key: fixed, it goes through with the same one.
	if code, out := notifyCall(t, in.URL(), "k1", valid); code != 202 || len(idsOf(out)) != 1 {
		t.Errorf("the fixed request: %d %v", code, out)
	}
}

// signalctl notify creates through REST; the same --key twice makes one.
func TestNotifyCommandCreatesThroughREST(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	serverEnv(t, in)
	args := []string{"notify", "--recipients", "u1,u2", "--key", "cli-1", "--event-id", "pay-1", "-o", "json"}
	var first string
	for i := 0; i < 2; i++ {
		out, errOut, code := run(t, args...)
		var got struct {
			Key string   `json:"idempotencyKey"`
			IDs []string `json:"ids"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Key != "cli-1" || len(got.IDs) != 2 {
			t.Fatalf("notify: %d %q %q", code, out, errOut)
		}
		if i == 0 {
			first = out
		} else if out != first {
			t.Errorf("the repeat answered %s, want %s", out, first)
		}
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE event_id = 'pay-1'`); n != 2 {
		t.Errorf("%d notifications, want 2", n)
	}
	if _, errOut, code := run(t, "notify", "--scope", "users"); code != 2 || !bytes.Contains([]byte(errOut), []byte("recipientIds must be a non-empty list")) {
		t.Errorf("invalid message: %d %q", code, errOut)
	}

	// signalctl events: update, then retract, both idempotent.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"events", "update", "pay-1", "--content", "Refunded", "-o", "json"}, `{"eventId":"pay-1","updated":2}`},
		{[]string{"events", "retract", "pay-1", "-o", "json"}, `{"eventId":"pay-1","removed":2}`},
		{[]string{"events", "retract", "pay-1", "-o", "json"}, `{"eventId":"pay-1","removed":0}`},
	} {
		out, errOut, code := run(t, tt.args...)
		var compact bytes.Buffer
		if code != 0 || json.Compact(&compact, []byte(out)) != nil || compact.String() != tt.want {
			t.Errorf("%v: %d %q %q, want %s", tt.args, code, out, errOut, tt.want)
		}
		if tt.args[1] == "update" {
			if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE event_id = 'pay-1' AND content = 'Refunded'`); n != 2 {
				t.Errorf("%d notifications updated in the database, want 2", n)
			}
		}
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"events", "update", "pay-1"}, 2, "nothing to update"},
		{[]string{"events", "retract"}, 2, "accepts 1 arg"},
		{[]string{"events", "retract", "pay\x01"}, 1, "eventId"},
	} {
		if _, errOut, code := run(t, tt.args...); code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d %q, want %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
}

// An expired notification leaves every connected device (on the instance
// that did not store it too), the inbox and the counts within 1 s of its
// expiresAt, as a change of the recipient's stream that ?since= replays.
func TestAnExpiredNotificationLeavesEveryDeviceWithinASecond(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	a := env.Serve(t, nil)
	b := env.Serve(t, nil)
	tok := testkit.Token(t, "u1")
	phone := testkit.Dial(t, b.WSURL(), tok)
	phone.Welcome()
	tab := testkit.Dial(t, a.WSURL(), tok)
	tab.Welcome()

	expires := time.Now().Add(3 * time.Second).UTC().Truncate(time.Millisecond)
	p := testkit.Producer(t, env.Broker)
	testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, func(m map[string]any) {
		paid("expired already: never stored, never pushed")(m)
		m["expiresAt"] = time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	}))
	testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, paid("stays")))
	testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, func(m map[string]any) {
		paid("goes")(m)
		m["expiresAt"] = expires.Format(time.RFC3339Nano)
	}))
	var goes string
	for _, c := range []*testkit.Client{phone, tab} {
		if f := c.Expect("observation/signal/notification/created"); f.Pos != 1 || !bytes.Contains(f.Data, []byte(`"stays"`)) {
			t.Errorf("first frame %s at %d, want stays at 1", f.Data, f.Pos)
		}
		f := c.Expect("observation/signal/notification/created")
		var n struct {
			ID        string `json:"id"`
			ExpiresAt string `json:"expiresAt"`
		}
		_ = json.Unmarshal(f.Data, &n)
		if n.ExpiresAt != expires.Format("2006-01-02T15:04:05.000Z") {
			t.Errorf("created frame %s, want expiresAt %s", f.Data, expires)
		}
		goes = n.ID
	}
	for _, c := range []*testkit.Client{phone, tab} {
		f := c.Next(time.Until(expires) + 5*time.Second)
		late := time.Since(expires)
		if f.Topic != "observation/signal/notification/removed" || string(f.Data) != `{"ids":["`+goes+`"],"reason":"expired"}` ||
			f.Pos != 3 || string(f.Counts) != `{"unread":1,"unseen":1,"total":1}` {
			t.Errorf("frame %s pos %d counts %s, want the removal of %s at 3", f.Data, f.Pos, f.Counts, goes)
		}
		if late > time.Second || late < 0 {
			t.Errorf("removed %s after expiresAt, want within 1 s", late)
		}
	}
	_, page := call(t, "GET", a.URL()+"/notifications", tok, nil)
	if ids := itemIDs(page); len(ids) != 1 || ids[0] == goes {
		t.Errorf("inbox %v after the expiry", ids)
	}
	// A device that was away catches up with the removal.
	late := testkit.Dial(t, b.WSURL()+"?since=2", tok)
	late.Welcome()
	late.Expect("signal/system/joined")
	if f := late.Expect("observation/signal/notification/removed"); f.Pos != 3 {
		t.Errorf("catch-up %s at %d", f.Data, f.Pos)
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM expiry_queue`); n != 0 {
		t.Errorf("%d rows left in the expiry queue", n)
	}
}

// addOrgMembers makes recipients m00000… members of org-1.
func addOrgMembers(t *testing.T, st *store.Store, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%05d", i)
	}
	if _, err := st.ChangeMembers(context.Background(), event.ScopeKey{Scope: "org", ID: "org-1"}, event.OpAdd, store.SliceIDs(ids)); err != nil {
		t.Fatal(err)
	}
	return ids
}

// inboxCounts is a recipient's counts (pos left out).
func inboxCounts(t *testing.T, base, recipient string) string {
	t.Helper()
	code, c := call(t, "GET", base+"/notifications/counts?recipientId="+recipient, testkit.APIKey, nil)
	delete(c, "pos")
	b, _ := json.Marshal(c)
	if code != 200 {
		t.Errorf("counts of %s: %d %s", recipient, code, b)
	}
	return string(b)
}

// DELETE /events/{eventId} retracts an organizer's event from its 10,000
// recipients, each device on either instance gets the removal; PATCH
// updates in place; both are idempotent.
func TestRetractAndUpdateAnEventReachEveryRecipientAndDevice(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	a := env.Serve(t, nil)
	b := env.Serve(t, nil)
	members := addOrgMembers(t, env.Store, 10000)
	first, last := members[0], members[len(members)-1]
	devA := testkit.Dial(t, a.WSURL(), testkit.Token(t, first))
	devA.Welcome()
	devB := testkit.Dial(t, b.WSURL(), testkit.Token(t, last))
	devB.Welcome()

	for _, ev := range []string{"big-1", "big-2"} {
		code, out := notifyCall(t, a.URL(), ev, testkit.Message("org", nil, func(m map[string]any) { m["eventId"] = ev }))
		if code != 202 || len(idsOf(out)) != 10000 {
			t.Fatalf("create %s: %d, %d ids", ev, code, len(idsOf(out)))
		}
	}
	var big1 [2]string
	for i, d := range []*testkit.Client{devA, devB} {
		big1[i] = notificationID(t, d.Expect("observation/signal/notification/created"))
		d.Expect("observation/signal/notification/created")
	}

	start := time.Now()
	code, out := call(t, "DELETE", b.URL()+"/events/big-1", testkit.APIKey, nil)
	if code != 200 || out["removed"] != 10000.0 {
		t.Fatalf("retract: %d %v", code, out)
	}
	t.Logf("retracted from 10,000 recipients in %s", time.Since(start))
	for i, d := range []*testkit.Client{devA, devB} {
		f := d.Expect("observation/signal/notification/removed")
		if string(f.Data) != `{"ids":["`+big1[i]+`"],"reason":"retracted"}` || f.Pos != 3 || string(f.Counts) != `{"unread":1,"unseen":1,"total":1}` {
			t.Errorf("device %d: %s at %d counts %s", i, f.Data, f.Pos, f.Counts)
		}
	}
	if got := inboxCounts(t, a.URL(), members[5000]); got != `{"total":1,"unread":1,"unseen":1}` {
		t.Errorf("counts of a member without a device: %s", got)
	}
	if code, out := call(t, "DELETE", a.URL()+"/events/big-1", testkit.APIKey, nil); code != 200 || out["removed"] != 0.0 {
		t.Errorf("repeat: %d %v", code, out)
	}

	patch := map[string]any{"content": "Refunded", "data": map[string]any{"refund": 1}}
	code, out = call(t, "PATCH", a.URL()+"/events/big-2", testkit.APIKey, patch)
	if code != 200 || out["updated"] != 10000.0 {
		t.Fatalf("update: %d %v", code, out)
	}
	for i, d := range []*testkit.Client{devA, devB} {
		f := d.Expect("observation/signal/notification/updated")
		var c struct {
			IDs     []string        `json:"ids"`
			Content string          `json:"content"`
			Data    json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(f.Data, &c)
		if len(c.IDs) != 1 || c.Content != "Refunded" || string(c.Data) != `{"refund":1}` || f.Pos != 4 {
			t.Errorf("device %d: %s at %d", i, f.Data, f.Pos)
		}
	}
	if code, out := call(t, "PATCH", b.URL()+"/events/big-2", testkit.APIKey, patch); code != 200 || out["updated"] != 0.0 {
		t.Errorf("repeat: %d %v", code, out)
	}
	_, page := call(t, "GET", a.URL()+"/notifications?recipientId="+members[7], testkit.APIKey, nil)
	items, _ := page["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["content"] != "Refunded" {
		t.Errorf("inbox after the update: %v", page)
	}
	devA.Quiet(300 * time.Millisecond)
}

// 1,000 events of one groupKey make one item per recipient with count
// 1,000 and unread 1; a device on the other instance follows the item's
// count, not a card per event.
func TestGroupedEventsCollapseIntoOneItemPerRecipient(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	a := env.Serve(t, nil)
	b := env.Serve(t, nil)
	tok := testkit.Token(t, "u1")
	dev := testkit.Dial(t, b.WSURL(), tok)
	dev.Welcome()
	p := testkit.Producer(t, env.Broker)
	var values [][]byte
	for i := 0; i < 1000; i++ {
		values = append(values, testkit.Message("users", []string{"u1", "u2"}, func(m map[string]any) {
			paid(fmt.Sprintf("p-%d", i))(m)
			m["groupKey"] = "payments"
			m["actor"] = map[string]any{"id": fmt.Sprintf("a%d", i%5), "name": "A", "type": "user"}
		}))
	}
	testkit.Produce(t, p, values...)

	var item string
	count := 0
	for count < 1000 {
		f := dev.Next(30 * time.Second)
		var d struct {
			ID    string   `json:"id"`
			IDs   []string `json:"ids"`
			Count int      `json:"count"`
		}
		_ = json.Unmarshal(f.Data, &d)
		switch f.Topic {
		case "observation/signal/notification/created":
			if item != "" {
				t.Fatalf("a second card %s after %s", d.ID, item)
			}
			item, count = d.ID, d.Count
		case "observation/signal/notification/updated":
			if len(d.IDs) != 1 || d.IDs[0] != item || d.Count <= count {
				t.Fatalf("update %s of item %s at count %d", f.Data, item, count)
			}
			count = d.Count
		default:
			t.Fatalf("frame %s %s", f.Topic, f.Data)
		}
		if string(f.Counts) != `{"unread":1,"unseen":1,"total":1}` {
			t.Fatalf("counts %s, want unread 1", f.Counts)
		}
	}
	for _, r := range []string{"u1", "u2"} {
		_, page := call(t, "GET", a.URL()+"/notifications?recipientId="+r, testkit.APIKey, nil)
		items, _ := page["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("%s has %d items", r, len(items))
		}
		it := items[0].(map[string]any)
		if it["count"] != 1000.0 || len(it["actors"].([]any)) != 3 || it["actors"].([]any)[0].(map[string]any)["id"] != "a4" {
			t.Errorf("%s's item %v", r, it)
		}
		if got := inboxCounts(t, a.URL(), r); got != `{"total":1,"unread":1,"unseen":1}` {
			t.Errorf("%s counts %s", r, got)
		}
	}
	// Read, the group closes: the next event starts a new item.
	call(t, "POST", a.URL()+"/notifications/read-all?recipientId=u1", testkit.APIKey, nil)
	testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, func(m map[string]any) { m["groupKey"] = "payments" }))
	testkit.Eventually(t, 10*time.Second, "a new item", func() bool {
		return inboxCounts(t, a.URL(), "u1") == `{"total":2,"unread":1,"unseen":1}`
	})
}

// With members.revoke_on_remove, a member removed from an organizer loses
// that organizer's notifications on every device; off (the default), it
// keeps them.
func TestARemovedMemberLosesTheScopesNotificationsWhenRevocationIsOn(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint("revoke=", on), func(t *testing.T) {
			t.Parallel()
			env := testkit.NewEnv(t)
			edit := func(c *config.Config) { c.Members.RevokeOnRemove = on }
			a := env.Serve(t, edit)
			b := env.Serve(t, edit)
			for _, id := range []string{"u1", "u2"} {
				if _, err := env.Store.ChangeMembers(context.Background(), event.ScopeKey{Scope: "org", ID: "org-1"}, event.OpAdd, store.SliceIDs([]string{id})); err != nil {
					t.Fatal(err)
				}
			}
			dev := testkit.Dial(t, b.WSURL(), testkit.Token(t, "u1"))
			dev.Welcome()
			notifyCall(t, a.URL(), "org-event", testkit.Message("org", nil, nil))
			notifyCall(t, a.URL(), "other-org", testkit.Message("users", []string{"u1"}, func(m map[string]any) { m["organizerId"] = "org-2" }))
			orgItem := notificationID(t, dev.Expect("observation/signal/notification/created"))
			dev.Expect("observation/signal/notification/created")

			if code, out := call(t, "DELETE", a.URL()+"/memberships/org/org-1/members/u1", testkit.APIKey, nil); code != 200 || out["removed"] != 1.0 {
				t.Fatalf("remove: %d %v", code, out)
			}
			if !on {
				dev.Quiet(500 * time.Millisecond)
				if got := inboxCounts(t, a.URL(), "u1"); got != `{"total":2,"unread":2,"unseen":2}` {
					t.Errorf("u1 counts %s, want both kept", got)
				}
				return
			}
			f := dev.Expect("observation/signal/notification/removed")
			if string(f.Data) != `{"ids":["`+orgItem+`"],"reason":"revoked"}` || f.Pos != 3 || string(f.Counts) != `{"unread":1,"unseen":1,"total":1}` {
				t.Errorf("frame %s at %d counts %s", f.Data, f.Pos, f.Counts)
			}
			if got := inboxCounts(t, a.URL(), "u2"); got != `{"total":1,"unread":1,"unseen":1}` {
				t.Errorf("u2, still a member: %s", got)
			}
		})
	}
}
