package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

// itemIDs are the ids of a page's items.
func itemIDs(body map[string]any) []string {
	items, _ := body["items"].([]any)
	out := []string{}
	for _, it := range items {
		out = append(out, it.(map[string]any)["id"].(string))
	}
	return out
}

// Every state change is pushed to the recipient's room on every instance,
// after it commits, with the fields that changed: a second tab or phone on
// another instance updates its badge without polling.
func TestEveryStateChangeReachesTheRecipientsDevicesOnEveryInstance(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	a := env.Serve(t, nil)
	if _, err := kadm.NewClient(testkit.Producer(t, env.Broker)).CreateTopic(context.Background(), 1, 1, nil, "unused-topic"); err != nil {
		t.Fatal(err)
	}
	b := env.Serve(t, func(c *config.Config) { c.Kafka.Topic = "unused-topic"; c.Kafka.GroupID = "b-only" })
	p := testkit.Producer(t, env.Broker)
	for i := 0; i < 5; i++ {
		testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, paid(fmt.Sprintf("p-%d", i))))
	}
	testkit.Produce(t, p, testkit.Message("users", []string{"u2"}, nil))
	testkit.Eventually(t, 10*time.Second, "6 rows", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`) == 6
	})
	u1 := testkit.Token(t, "u1")
	phone := testkit.Dial(t, b.WSURL(), u1) // the other device, on the other instance
	phone.Welcome()
	tab := testkit.Dial(t, a.WSURL(), u1)
	tab.Welcome()
	api := a.URL() + "/notifications"
	_, page := call(t, "GET", api, u1, nil)
	id := itemIDs(page) // newest first
	if len(id) != 5 {
		t.Fatalf("page %v", page)
	}

	expect := func(t *testing.T, data string) {
		t.Helper()
		for _, c := range []*testkit.Client{phone, tab} {
			f := c.Expect("observation/signal/notification/updated")
			if f.Room != "signal/notification/u1" || string(f.Data) != data {
				t.Errorf("frame %s %s, want %s", f.Room, f.Data, data)
			}
		}
	}
	counts := func(t *testing.T, want string) {
		t.Helper()
		code, c := call(t, "GET", api+"/counts", u1, nil)
		delete(c, "pos") // the stream's position: its own tests
		if got, _ := json.Marshal(c); code != 200 || string(got) != want {
			t.Errorf("counts %d %s, want %s", code, got, want)
		}
	}
	state := func(t *testing.T, body map[string]any, read, seen, archived bool) {
		t.Helper()
		if body["isRead"] != read || body["isSeen"] != seen || body["isArchived"] != archived {
			t.Errorf("item %v, want read %v seen %v archived %v", body, read, seen, archived)
		}
	}
	counts(t, `{"total":5,"unread":5,"unseen":5}`)

	t.Run("seen, by ids", func(t *testing.T) {
		code, body := call(t, "POST", api+"/seen", u1, map[string]any{"ids": []string{id[4]}})
		if code != 200 || body["updated"] != float64(1) {
			t.Fatalf("%d %v", code, body)
		}
		expect(t, `{"ids":["`+id[4]+`"],"isSeen":true}`)
		counts(t, `{"total":5,"unread":5,"unseen":4}`)
	})
	t.Run("read one, which is seen too", func(t *testing.T) {
		code, body := call(t, "POST", api+"/"+id[3]+"/read", u1, nil)
		if code != 200 || body["id"] != id[3] {
			t.Fatalf("%d %v", code, body)
		}
		state(t, body, true, true, false)
		expect(t, `{"ids":["`+id[3]+`"],"isRead":true,"isSeen":true}`)
		for _, c := range []*testkit.Client{phone, tab} {
			c.Expect("observation/signal/notification/read")
		}
		counts(t, `{"total":5,"unread":4,"unseen":3}`)
	})
	t.Run("unread one", func(t *testing.T) {
		code, body := call(t, "POST", api+"/"+id[3]+"/unread", u1, nil)
		if code != 200 {
			t.Fatalf("%d %v", code, body)
		}
		state(t, body, false, true, false)
		expect(t, `{"ids":["`+id[3]+`"],"isRead":false,"isSeen":true}`)
		counts(t, `{"total":5,"unread":5,"unseen":3}`)
	})
	t.Run("archive one: out of the inbox, in the archive", func(t *testing.T) {
		code, body := call(t, "POST", api+"/"+id[2]+"/archive", u1, nil)
		if code != 200 {
			t.Fatalf("%d %v", code, body)
		}
		state(t, body, false, false, true)
		expect(t, `{"ids":["`+id[2]+`"],"isArchived":true}`)
		counts(t, `{"total":4,"unread":4,"unseen":2}`)
		if _, l := call(t, "GET", api, u1, nil); slices.Contains(itemIDs(l), id[2]) {
			t.Errorf("archived one listed in the inbox")
		}
		if _, l := call(t, "GET", api+"?archived=true", u1, nil); !slices.Equal(itemIDs(l), []string{id[2]}) {
			t.Errorf("archive lists %v", itemIDs(l))
		}
	})
	t.Run("unarchive it", func(t *testing.T) {
		if code, _ := call(t, "POST", api+"/"+id[2]+"/unarchive", u1, nil); code != 200 {
			t.Fatal(code)
		}
		expect(t, `{"ids":["`+id[2]+`"],"isArchived":false}`)
		counts(t, `{"total":5,"unread":5,"unseen":3}`)
	})
	t.Run("delete one: gone", func(t *testing.T) {
		req, _ := http.NewRequest("DELETE", api+"/"+id[1], nil)
		req.Header.Set("Authorization", "Bearer "+u1)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 204 || len(body) != 0 {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		expect(t, `{"ids":["`+id[1]+`"],"isDeleted":true}`)
		counts(t, `{"total":4,"unread":4,"unseen":2}`)
		if code, body := call(t, "GET", api+"/"+id[1], u1, nil); code != 404 || errCode(body) != "not_found" {
			t.Errorf("a deleted one is found: %d %v", code, body)
		}
		if code, _ := call(t, "POST", api+"/"+id[1]+"/read", u1, nil); code != 404 {
			t.Errorf("a deleted one can be read: %d", code)
		}
	})
	t.Run("filters", func(t *testing.T) {
		for _, tt := range []struct {
			query string
			want  []string
		}{
			{"", []string{id[0], id[2], id[3], id[4]}},
			{"?unread=true", []string{id[0], id[2], id[3], id[4]}},
			{"?unseen=true", []string{id[0], id[2]}},
			{"?unseen=true&unread=true&type=PAYMENT_SUCCESS&organizerId=org-1", []string{id[0], id[2]}},
			{"?type=REFUND", []string{}},
			{"?organizerId=org-9", []string{}},
			{"?archived=true", []string{}},
			{"?unseen=true&limit=1", []string{id[0]}},
		} {
			code, body := call(t, "GET", api+tt.query, u1, nil)
			if got := itemIDs(body); code != 200 || !slices.Equal(got, tt.want) {
				t.Errorf("%s: %d %v, want %v", tt.query, code, got, tt.want)
			}
		}
		_, body := call(t, "GET", api+"?limit=1", u1, nil)
		item := body["items"].([]any)[0].(map[string]any)
		for _, k := range []string{"id", "type", "organizerId", "content", "actionUrl", "data", "isRead", "createdAt", "isSeen", "isArchived"} {
			if _, ok := item[k]; !ok {
				t.Errorf("item lacks %s: %v", k, item)
			}
		}
	})
	t.Run("seen, all", func(t *testing.T) {
		code, body := call(t, "POST", api+"/seen", u1, map[string]any{"all": true})
		if code != 200 || body["updated"] != float64(2) {
			t.Fatalf("%d %v", code, body)
		}
		expect(t, `{"ids":["`+id[0]+`","`+id[2]+`"],"all":true,"isSeen":true}`)
		counts(t, `{"total":4,"unread":4,"unseen":0}`)
	})
	t.Run("read, by ids, with an API key", func(t *testing.T) {
		code, body := call(t, "POST", api+"/read?recipientId=u1", testkit.APIKey, map[string]any{"ids": []string{id[0], id[4], id[1]}})
		if code != 200 || body["updated"] != float64(2) {
			t.Fatalf("%d %v", code, body)
		}
		expect(t, `{"ids":["`+id[0]+`","`+id[4]+`"],"isRead":true,"isSeen":true}`)
		for _, c := range []*testkit.Client{phone, tab} {
			c.Expect("observation/signal/notification/read")
		}
	})
	t.Run("read-all", func(t *testing.T) {
		code, body := call(t, "POST", api+"/read-all", u1, nil)
		if code != 200 || body["updated"] != float64(2) {
			t.Fatalf("%d %v", code, body)
		}
		expect(t, `{"ids":["`+id[2]+`","`+id[3]+`"],"all":true,"isRead":true,"isSeen":true}`)
		for _, c := range []*testkit.Client{phone, tab} {
			if f := c.Expect("observation/signal/notification/read"); string(f.Data) != `{"all":true,"count":2}` {
				t.Errorf("read frame %s", f.Data)
			}
		}
		counts(t, `{"total":4,"unread":0,"unseen":0}`)
		if _, c := call(t, "GET", api+"/unread-count", u1, nil); c["unread"] != float64(0) {
			t.Errorf("unread-count %v", c)
		}
	})
	t.Run("nothing to change sends nothing", func(t *testing.T) {
		if code, body := call(t, "POST", api+"/read-all", u1, nil); code != 200 || body["updated"] != float64(0) {
			t.Errorf("%d %v", code, body)
		}
		phone.Quiet(200 * time.Millisecond)
	})
	t.Run("delete-all", func(t *testing.T) {
		code, body := call(t, "POST", api+"/delete-all", u1, nil)
		if code != 200 || body["updated"] != float64(4) {
			t.Fatalf("%d %v", code, body)
		}
		expect(t, `{"ids":["`+id[0]+`","`+id[2]+`","`+id[3]+`","`+id[4]+`"],"all":true,"isDeleted":true}`)
		counts(t, `{"total":0,"unread":0,"unseen":0}`)
		if _, l := call(t, "GET", api+"?archived=true", u1, nil); len(itemIDs(l)) != 0 {
			t.Errorf("after delete-all: %v", l)
		}
	})
	t.Run("a new notification after delete-all is there, and u2 was never touched", func(t *testing.T) {
		testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, nil))
		phone.Expect("observation/signal/notification/created")
		counts(t, `{"total":1,"unread":1,"unseen":1}`)
		if _, c := call(t, "GET", api+"/counts?recipientId=u2", testkit.APIKey, nil); c["unread"] != float64(1) || c["total"] != float64(1) {
			t.Errorf("u2 %v", c)
		}
	})
}

func TestInboxStateRoutesRefuseBadInput(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	u1 := testkit.Token(t, "u1")
	api := in.URL() + "/notifications"
	many := make([]string, event.MaxChangeIDs+1)
	for i := range many {
		many[i] = "0190d5b2-0000-8000-8000-000000000000"
	}
	for _, tt := range []struct {
		name, method, url, cred string
		body                    any
		status                  int
		code                    string
	}{
		{"no credential", "POST", api + "/seen", "", map[string]any{"all": true}, 401, "unauthorized"},
		{"another recipient with a token", "GET", api + "/counts?recipientId=u2", u1, nil, 403, "forbidden"},
		{"an API key without recipientId", "GET", api + "/counts", testkit.APIKey, nil, 400, "bad_request"},
		{"ids and all", "POST", api + "/seen", u1, map[string]any{"all": true, "ids": []string{many[0]}}, 400, "bad_request"},
		{"neither ids nor all", "POST", api + "/read", u1, map[string]any{}, 400, "bad_request"},
		{"an id that is not a UUID", "POST", api + "/archive", u1, map[string]any{"ids": []string{"x"}}, 400, "bad_request"},
		{"more ids than the bound", "POST", api + "/delete", u1, map[string]any{"ids": many}, 400, "bad_request"},
		{"all where it does not apply", "POST", api + "/unread", u1, map[string]any{"all": true}, 400, "bad_request"},
		{"an unknown field", "POST", api + "/seen", u1, map[string]any{"everything": true}, 400, "bad_request"},
		{"not JSON", "POST", api + "/seen", u1, "{", 400, "bad_request"},
		{"unseen not a boolean", "GET", api + "?unseen=maybe", u1, nil, 400, "bad_request"},
		{"archived not a boolean", "GET", api + "?archived=2", u1, nil, 400, "bad_request"},
		{"a type with a control character", "GET", api + "?type=a%01b", u1, nil, 400, "bad_request"},
		{"an organizer over 256 bytes", "GET", api + "?organizerId=" + strings.Repeat("o", 257), u1, nil, 400, "bad_request"},
		{"delete of an unknown id", "DELETE", api + "/0190d5b2-0000-8000-8000-000000000000", u1, nil, 404, "not_found"},
		{"archive of an id that is not a UUID", "POST", api + "/nope/archive", u1, nil, 400, "bad_request"},
		{"get of an unknown id", "GET", api + "/0190d5b2-0000-8000-8000-000000000000", u1, nil, 404, "not_found"},
		{"a method the path does not have", "PUT", api + "/0190d5b2-0000-8000-8000-000000000000", u1, nil, 405, "method_not_allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, tt.method, tt.url, tt.cred, tt.body)
			if code != tt.status || errCode(body) != tt.code {
				t.Errorf("got %d %v, want %d %s", code, body, tt.status, tt.code)
			}
		})
	}
	if code, _ := call(t, "POST", api+"/seen", u1, map[string]any{"ids": many[:event.MaxChangeIDs]}); code != 200 {
		t.Errorf("the bound itself: %d", code)
	}
}

// A serve instance with a retention removes the days past it (at start,
// then hourly), skips records older than it, and keeps everything else.
func TestRetentionInAServer(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	old := now.Add(-10 * store.Day)
	if err := env.Store.EnsurePartitions(ctx, []time.Time{old}); err != nil {
		t.Fatal(err)
	}
	oldDay := store.DayPartition(old)
	in := env.Serve(t, func(c *config.Config) { c.Notifications.Retention = config.Age(3 * store.Day) })
	testkit.Eventually(t, 10*time.Second, "the expired day removed at start", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM pg_class WHERE relname = $1`, oldDay) == 0
	})
	cl := testkit.Producer(t, env.Broker)
	stale := testkit.Message("users", []string{"u1"}, paid("stale"))
	fresh := testkit.Message("users", []string{"u1"}, paid("fresh"))
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(wctx, &kgo.Record{Key: []byte("k"), Value: stale, Timestamp: now.Add(-4 * store.Day)},
		&kgo.Record{Key: []byte("k"), Value: fresh}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the fresh record stored", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE data->'payment'->>'subject' = 'fresh'`) == 1
	})
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE data->'payment'->>'subject' = 'stale'`); n != 0 {
		t.Errorf("the record older than the retention was stored")
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM dead_letters`); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	code, metrics := httpText(t, in.URL()+"/metrics")
	if code != 200 || !strings.Contains(metrics, "signal_records_expired_total 1\n") {
		t.Errorf("metrics: %d, expired counter missing or not 1", code)
	}
}

func httpText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestNotificationsCommandListsShowsAndMarksForSupport(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	t.Setenv("SIGNAL_DATABASE_URL", env.DBURL)
	p := testkit.Producer(t, env.Broker)
	for i := 0; i < 3; i++ {
		testkit.Produce(t, p, testkit.Message("users", []string{"carol"}, paid(fmt.Sprintf("p-%d", i))))
	}
	testkit.Eventually(t, 10*time.Second, "3 rows", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`) == 3
	})
	device := testkit.Dial(t, in.WSURL(), testkit.Token(t, "carol"))
	device.Welcome()

	out, errOut, code := run(t, "notifications", "list", "--recipient", "carol", "-o", "json")
	var items []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &items) != nil || len(items) != 3 || items[0]["isSeen"] != false {
		t.Fatalf("list: %d %s %s", code, out, errOut)
	}
	newest := items[0]["id"].(string)

	out, errOut, code = run(t, "notifications", "mark", "--recipient", "carol", "read", newest, "0190d5b2-0000-8000-8000-000000000000")
	if code != 0 || !strings.Contains(out, "1 notification(s) changed") || !strings.Contains(errOut, "1 of the ids are not carol's") {
		t.Fatalf("mark: %d %q %q", code, out, errOut)
	}
	if f := device.Expect("observation/signal/notification/updated"); string(f.Data) != `{"ids":["`+newest+`"],"isRead":true,"isSeen":true}` {
		t.Errorf("the device got %s", f.Data)
	}
	out, _, code = run(t, "notifications", "list", "--recipient", "carol", "--unread")
	if code != 0 || strings.Contains(out, newest) || !strings.Contains(out, "STATE") || strings.Count(out, "unread, unseen") != 2 {
		t.Errorf("list --unread: %d\n%s", code, out)
	}
	out, _, code = run(t, "notifications", "show", "--recipient", "carol", newest, "-o", "json")
	var shown map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || shown["isRead"] != true || shown["recipientId"] != "carol" ||
		shown["record"].(map[string]any)["topic"] != testkit.Topic {
		t.Errorf("show: %d %s", code, out)
	}
	if out, _, code = run(t, "notifications", "show", "--recipient", "carol", newest); code != 0 || !strings.Contains(out, "read") || !strings.Contains(out, "record") {
		t.Errorf("show table: %d %s", code, out)
	}

	out, _, code = run(t, "notifications", "mark", "--recipient", "carol", "seen", "--all", "-o", "json")
	if code != 0 || !strings.Contains(out, `"updated": 2`) {
		t.Errorf("seen --all: %d %s", code, out)
	}
	device.Expect("observation/signal/notification/updated")
	for _, tt := range []struct {
		name string
		args []string
		code int
	}{
		{"delete --all off a terminal without --yes", []string{"mark", "--recipient", "carol", "delete", "--all"}, 2},
		{"--all where it does not apply", []string{"mark", "--recipient", "carol", "archive", "--all"}, 2},
		{"an unknown state change", []string{"mark", "--recipient", "carol", "frobnicate", newest}, 2},
		{"an id that is not a UUID", []string{"show", "--recipient", "carol", "nope"}, 2},
		{"someone else's notification", []string{"show", "--recipient", "dave", newest}, 1},
		{"no recipient", []string{"list"}, 2},
		{"a limit too large", []string{"list", "--recipient", "carol", "--limit", "5000"}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, errOut, code := run(t, append([]string{"notifications"}, tt.args...)...); code != tt.code {
				t.Errorf("exit %d (%s), want %d", code, errOut, tt.code)
			}
		})
	}
	if _, _, code := run(t, "notifications", "mark", "--recipient", "carol", "delete", "--all", "--yes"); code != 0 {
		t.Errorf("delete --all --yes: %d", code)
	}
	if _, c := call(t, "GET", in.URL()+"/notifications/counts?recipientId=carol", testkit.APIKey, nil); c["total"] != float64(0) {
		t.Errorf("after delete --all: %v", c)
	}

	t.Run("completion of recipients and of their notifications", func(t *testing.T) {
		testkit.Produce(t, p, testkit.Message("users", []string{"carol"}, nil))
		testkit.Eventually(t, 10*time.Second, "a new row", func() bool {
			return testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`) == 4
		})
		if got := complete(t, "notifications", "list", "--recipient", "ca"); !slices.Contains(got, "carol") {
			t.Errorf("recipients: %v", got)
		}
		var fresh string
		env.Store.Pool.QueryRow(context.Background(), `SELECT id::text FROM notifications ORDER BY seq DESC LIMIT 1`).Scan(&fresh)
		if got := complete(t, "notifications", "show", "--recipient", "carol", ""); !slices.Equal(got, []string{fresh}) {
			t.Errorf("notification ids: %v, want [%s]", got, fresh)
		}
		if got := complete(t, "notifications", "mark", "--recipient", "carol", ""); !slices.Contains(got, "archive") {
			t.Errorf("states: %v", got)
		}
	})
}
