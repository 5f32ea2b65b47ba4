package e2e

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/testkit"
)

func TestInboxPaginationReadStateAndOwnership(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	p := testkit.Producer(t, env.Broker)
	for i := 0; i < 25; i++ {
		testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, paid(fmt.Sprintf("p-%02d", i))))
	}
	testkit.Produce(t, p, testkit.Message("users", []string{"u2"}, paid("theirs")))
	testkit.Eventually(t, 10*time.Second, "26 rows", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`) == 26
	})
	u1 := testkit.Token(t, "u1")
	list := in.URL() + "/notifications"

	// Walk every page: newest first, no repeats, nothing missing.
	var got []string
	cursor := ""
	pages := 0
	for {
		u := list + "?limit=10"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		code, body := call(t, "GET", u, u1, nil)
		if code != 200 {
			t.Fatalf("%d %v", code, body)
		}
		pages++
		items, _ := body["items"].([]any)
		for _, it := range items {
			m := it.(map[string]any)
			got = append(got, m["data"].(map[string]any)["payment"].(map[string]any)["subject"].(string))
		}
		next, isString := body["nextCursor"].(string)
		if !isString {
			if body["nextCursor"] != nil {
				t.Fatalf("nextCursor %v", body["nextCursor"])
			}
			break
		}
		cursor = next
	}
	if pages != 3 || len(got) != 25 || got[0] != "p-24" || got[24] != "p-00" {
		t.Fatalf("%d pages, %d items, first %v last %v", pages, len(got), got[0], got[len(got)-1])
	}
	for i := 1; i < len(got); i++ {
		if got[i] >= got[i-1] {
			t.Fatalf("not newest first at %d: %s then %s", i, got[i-1], got[i])
		}
	}

	// Reading marks, pushes to the other tabs, and narrows unread=true.
	tab := testkit.Dial(t, in.WSURL(), u1)
	tab.Welcome()
	_, first := call(t, "GET", list+"?limit=1", u1, nil)
	id := first["items"].([]any)[0].(map[string]any)["id"].(string)
	code, body := call(t, "POST", list+"/"+id+"/read", u1, nil)
	if code != 200 || body["isRead"] != true || body["id"] != id {
		t.Fatalf("read: %d %v", code, body)
	}
	if f := tab.Expect("observation/signal/notification/updated"); string(f.Data) != `{"ids":["`+id+`"],"isRead":true,"isSeen":true}` {
		t.Errorf("updated frame %+v", f)
	}
	f := tab.Expect("observation/signal/notification/read") // the frame of before, still sent
	if f.Room != "signal/notification/u1" || string(f.Data) != `{"ids":["`+id+`"],"count":1}` {
		t.Errorf("read frame %+v", f)
	}
	if _, c := call(t, "GET", list+"/unread-count", u1, nil); c["unread"] != float64(24) {
		t.Errorf("unread count %v, want 24", c)
	}
	if _, c := call(t, "GET", list+"?unread=true&limit=100", u1, nil); len(c["items"].([]any)) != 24 {
		t.Errorf("unread=true gave %d items", len(c["items"].([]any)))
	}

	// u1's token cannot see or touch u2's notifications.
	theirID := ""
	env.Store.Pool.QueryRow(t.Context(), `SELECT id::text FROM notifications WHERE recipient_id = 'u2'`).Scan(&theirID)
	if code, body := call(t, "GET", list+"?recipientId=u2", u1, nil); code != 403 || errCode(body) != "forbidden" {
		t.Errorf("reading u2 with u1's token: %d %v", code, body)
	}
	if code, body := call(t, "POST", list+"/"+theirID+"/read", u1, nil); code != 404 || errCode(body) != "not_found" {
		t.Errorf("marking u2's notification with u1's token: %d %v", code, body)
	}
	if code, _ := call(t, "POST", list+"/read-all?recipientId=u2", u1, nil); code != 403 {
		t.Errorf("read-all of u2 with u1's token: %d", code)
	}
	if _, c := call(t, "GET", list+"/counts?recipientId=u2", testkit.APIKey, nil); c["unread"] != float64(1) {
		t.Errorf("u2's notification was marked read: %v", c)
	}

	// read-all, and the API key path with recipientId.
	code, body = call(t, "POST", list+"/read-all", u1, nil)
	if code != 200 || body["updated"] != float64(24) {
		t.Errorf("read-all: %d %v", code, body)
	}
	tab.Expect("observation/signal/notification/updated")
	tab.Expect("observation/signal/notification/read")
	if code, body := call(t, "GET", list+"?recipientId=u2", testkit.APIKey, nil); code != 200 || len(body["items"].([]any)) != 1 {
		t.Errorf("API key listing u2: %d %v", code, body)
	}

	for _, tt := range []struct {
		name, method, url, cred string
		status                  int
		code                    string
	}{
		{"no credential", "GET", list, "", 401, "unauthorized"},
		{"bad token", "GET", list, "x.y.z", 401, "unauthorized"},
		{"API key without recipientId", "GET", list, testkit.APIKey, 400, "bad_request"},
		{"limit too large", "GET", list + "?limit=101", u1, 400, "bad_request"},
		{"limit zero", "GET", list + "?limit=0", u1, 400, "bad_request"},
		{"limit not a number", "GET", list + "?limit=ten", u1, 400, "bad_request"},
		{"bad cursor", "GET", list + "?cursor=%%%", u1, 400, "bad_request"},
		{"forged cursor", "GET", list + "?cursor=abc", u1, 400, "bad_request"},
		{"unread not a boolean", "GET", list + "?unread=maybe", u1, 400, "bad_request"},
		{"id not a UUID", "POST", list + "/nope/read", u1, 400, "bad_request"},
		{"unknown id", "POST", list + "/0190d5b2-0000-8000-8000-000000000000/read", u1, 404, "not_found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, tt.method, tt.url, tt.cred, nil)
			if code != tt.status || errCode(body) != tt.code {
				t.Errorf("got %d %v, want %d %s", code, body, tt.status, tt.code)
			}
		})
	}
}
