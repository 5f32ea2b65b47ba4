package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/testkit"
)

const membersTopic = "signal.members"

// ids lists a page's items.
func ids(t *testing.T, m map[string]any) []string {
	t.Helper()
	items, ok := m["items"].([]any)
	if !ok {
		t.Fatalf("no items in %v", m)
	}
	out := []string{}
	for _, it := range items {
		out = append(out, it.(string))
	}
	return out
}

// allPages follows nextCursor from u (which has a query string) and
// returns every item, checking that each page but the last is full.
func allPages(t *testing.T, u string, limit int) []string {
	t.Helper()
	var out []string
	cursor := ""
	for pages := 0; ; pages++ {
		q := fmt.Sprintf("%s?limit=%d", u, limit)
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		code, m := call(t, "GET", q, testkit.APIKey, nil)
		if code != 200 {
			t.Fatalf("GET %s: %d %v", q, code, m)
		}
		page := ids(t, m)
		out = append(out, page...)
		next, _ := m["nextCursor"].(string)
		if next == "" {
			if m["nextCursor"] != nil {
				t.Fatalf("nextCursor = %v, want null on the last page", m["nextCursor"])
			}
			return out
		}
		if len(page) != limit {
			t.Fatalf("page %d has %d items and a next cursor, want %d", pages+1, len(page), limit)
		}
		cursor = next
	}
}

func countsOf(m map[string]any) string {
	var parts []string
	for _, k := range []string{"added", "removed", "members"} {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(parts, " ")
}

func TestMembershipAPIReplacesAddsRemovesAndPages(t *testing.T) {
	env := testkit.NewEnv(t)
	p := startServe(t, env)
	base := "http://" + p.addr
	group := base + "/memberships/org/org-1"

	steps := []struct {
		method, path string
		body         any
		want         string
	}{
		{"PUT", "", map[string]any{"recipientIds": []string{"u3", "u1", "u2", "u1"}}, "added=3 removed=0 members=3"},
		{"PUT", "", map[string]any{"recipientIds": []string{"u3", "u1", "u2"}}, "added=0 removed=0 members=3"}, // idempotent
		{"POST", "/members", map[string]any{"recipientIds": []string{"u4", "u1"}}, "added=1"},
		{"DELETE", "/members/u2", nil, "removed=1"},
		{"DELETE", "/members/u2", nil, "removed=0"}, // a sync may repeat itself
		{"POST", "/members/remove", map[string]any{"recipientIds": []string{"u3", "nobody"}}, "removed=1"},
	}
	for _, s := range steps {
		code, m := call(t, s.method, group+s.path, testkit.APIKey, s.body)
		if code != 200 || countsOf(m) != s.want {
			t.Fatalf("%s %s: %d %v, want 200 %s", s.method, s.path, code, m, s.want)
		}
	}
	if got := allPages(t, group, 10); !slices.Equal(got, []string{"u1", "u4"}) {
		t.Errorf("members %v, want u1 u4", got)
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM memberships WHERE scope = 'org' AND scope_id = 'org-1'`); n != 2 {
		t.Errorf("%d rows in memberships, want 2", n)
	}

	t.Run("pages of members and of scope ids are complete, ordered and stable", func(t *testing.T) {
		var want []string
		for i := 0; i < 25; i++ {
			want = append(want, fmt.Sprintf("m%02d", i))
		}
		if code, m := call(t, "PUT", base+"/memberships/merchant/shop%2F1", testkit.APIKey, map[string]any{"recipientIds": want}); code != 200 {
			t.Fatalf("PUT: %d %v", code, m)
		}
		if got := allPages(t, base+"/memberships/merchant/shop%2F1", 10); !slices.Equal(got, want) {
			t.Errorf("pages of 10 gave %v", got)
		}
		for i := 0; i < 5; i++ {
			call(t, "POST", fmt.Sprintf("%s/memberships/org/org-x%d/members", base, i), testkit.APIKey, map[string]any{"recipientIds": []string{"a"}})
		}
		if got := allPages(t, base+"/memberships/org", 2); strings.Join(got, " ") != "org-1 org-x0 org-x1 org-x2 org-x3 org-x4" {
			t.Errorf("org ids %v", got)
		}
		if got := allPages(t, base+"/memberships/merchant", 100); !slices.Equal(got, []string{"shop/1"}) {
			t.Errorf("merchant ids %v", got)
		}
	})

	t.Run("bad requests are 400 and change nothing", func(t *testing.T) {
		cases := []struct {
			name, method, path string
			body               any
			want               string
		}{
			{"scope users", "PUT", "/memberships/users/x", map[string]any{"recipientIds": []string{}}, "scope must be org or merchant"},
			{"unknown scope on the list", "GET", "/memberships/team", nil, "scope must be org or merchant"},
			{"control character in the scope id", "GET", "/memberships/org/a%07b", nil, "control characters"},
			{"scope id too long", "POST", "/memberships/org/" + strings.Repeat("x", 257) + "/members", map[string]any{"recipientIds": []string{"u"}}, "longer than 256 bytes"},
			{"recipient id with NUL", "DELETE", "/memberships/org/org-1/members/a%00b", nil, "control characters"},
			{"a bad id late in a replace", "PUT", "/memberships/org/org-1", `{"recipientIds":["z1","z2","z3",""]}`, "recipientIds[3] is required"},
			{"not JSON", "PUT", "/memberships/org/org-1", `{"recipientIds":[`, "ends before"},
			{"unknown field", "POST", "/memberships/org/org-1/members", `{"members":["x"]}`, `unknown field "members"`},
			{"limit too large", "GET", "/memberships/org/org-1?limit=1001", nil, "limit must be a number from 1 to 1000"},
			{"forged cursor", "GET", "/memberships/org/org-1?cursor=xyz", nil, "cursor is not one this API returned"},
		}
		for _, c := range cases {
			code, m := call(t, c.method, base+c.path, testkit.APIKey, c.body)
			e, _ := m["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if code != 400 || errCode(m) != "bad_request" || !strings.Contains(msg, c.want) {
				t.Errorf("%s: %d %v, want 400 bad_request saying %q", c.name, code, m, c.want)
			}
		}
		if got := allPages(t, group, 10); !slices.Equal(got, []string{"u1", "u4"}) {
			t.Errorf("members %v after bad requests, want u1 u4 unchanged", got)
		}
	})

	t.Run("only an API key may change or read memberships", func(t *testing.T) {
		for _, cred := range []string{"", testkit.Token(t, "u1"), "wrong-key"} {
			if code, m := call(t, "PUT", group, cred, map[string]any{"recipientIds": []string{}}); code != 401 || errCode(m) != "unauthorized" {
				t.Errorf("PUT with %q: %d %v", cred, code, m)
			}
			if code, _ := call(t, "GET", group, cred, nil); code != 401 {
				t.Errorf("GET with %q: %d", cred, code)
			}
		}
		if code, m := call(t, "PATCH", group, testkit.APIKey, nil); code != 405 || errCode(m) != "method_not_allowed" {
			t.Errorf("PATCH: %d %v", code, m)
		}
	})

	t.Run("signalctl members goes through the API when a server is configured", func(t *testing.T) {
		// A database URL that reaches nothing: only the API can serve these.
		t.Setenv("SIGNAL_DATABASE_URL", "postgres://postgres@127.0.0.1:1/none?sslmode=disable")
		t.Setenv("SIGNAL_SERVER", base)
		t.Setenv("SIGNAL_API_KEY", testkit.APIKey)
		if _, errOut, code := run(t, "members", "add", "--org", "cli-org", "c1", "c2", "c3"); code != 0 || errOut != "Added 3 member(s) to org cli-org (0 already there).\n" {
			t.Fatalf("add: %d %q", code, errOut)
		}
		if _, errOut, code := run(t, "members", "remove", "--org", "cli-org", "c2"); code != 0 || errOut != "Removed 1 member(s) from org cli-org.\n" {
			t.Fatalf("remove: %d %q", code, errOut)
		}
		csv := writeTemp(t, "scope,scope_id,recipient_id\norg,cli-org,c9\nmerchant,cli-shop,c1\n")
		if _, errOut, code := run(t, "members", "import", "--replace", csv); code != 0 || !strings.Contains(errOut, "Replaced 2 group(s) from 2 row(s): 2 membership(s) added, 2 removed.") {
			t.Fatalf("import --replace: %d %q", code, errOut)
		}
		out, errOut, code := run(t, "members", "list", "--org", "cli-org", "-o", "json")
		if code != 0 || strings.Join(strings.Fields(out), "") != `[{"scope":"org","scopeId":"cli-org","recipientId":"c9"}]` {
			t.Errorf("list: %d %s %s", code, out, errOut)
		}
		if got := allPages(t, base+"/memberships/merchant/cli-shop", 10); !slices.Equal(got, []string{"c1"}) {
			t.Errorf("cli-shop = %v", got)
		}
		// And the database itself when asked to.
		out, _, code = run(t, "members", "list", "--org", "cli-org", "--database-url", env.DBURL)
		if code != 0 || !strings.Contains(out, "c9") {
			t.Errorf("list --database-url: %d %s", code, out)
		}
	})
}

func TestAHundredThousandMemberReplaceStreams(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	p := startServe(t, env)
	group := "http://" + p.addr + "/memberships/org/huge"
	body := func(from, n int) io.Reader {
		r, w := io.Pipe()
		go func() {
			w.Write([]byte(`{"recipientIds":[`))
			for i := from; i < from+n; i++ {
				sep := ","
				if i == from {
					sep = ""
				}
				fmt.Fprintf(w, `%s"member-%07d"`, sep, i)
			}
			w.Write([]byte("]}"))
			w.Close()
		}()
		return r
	}
	put := func(from, n int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("PUT", group, body(from, n))
		req.Header.Set("Authorization", "Bearer "+testkit.APIKey)
		start := time.Now()
		// Minutes would mean a quadratic plan (stale statistics): fail, not hang.
		resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("PUT of %d members: %d %s", n, resp.StatusCode, b)
		}
		t.Logf("PUT of %d members (%d bytes) in %s", n, 20+n*18, time.Since(start).Round(time.Millisecond))
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
	if got := countsOf(put(0, 100_000)); got != "added=100000 removed=0 members=100000" {
		t.Errorf("first replace: %s", got)
	}
	// Half of them replaced by others: the body is over 1 MiB (the limit
	// of other bodies) and streams into the database.
	if got := countsOf(put(50_000, 100_000)); got != "added=50000 removed=50000 members=100000" {
		t.Errorf("second replace: %s", got)
	}
	var n int
	var first, last string
	env.Store.Pool.QueryRow(context.Background(), `SELECT count(*), min(recipient_id), max(recipient_id) FROM memberships WHERE scope_id = 'huge'`).Scan(&n, &first, &last)
	if n != 100_000 || first != "member-0050000" || last != "member-0149999" {
		t.Errorf("stored %d members from %s to %s, want 100000 from member-0050000 to member-0149999", n, first, last)
	}
}

func TestAnEventGoesToTheMembersPresentWhenItIsIngested(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	p := startServe(t, env)
	group := "http://" + p.addr + "/memberships/org/org-1"
	clients := map[string]*testkit.Client{}
	for _, sub := range []string{"u1", "u2", "u3"} {
		clients[sub] = testkit.Dial(t, p.wsURL(), testkit.Token(t, sub))
		clients[sub].Welcome()
	}
	prod := testkit.Producer(t, env.Broker)
	rounds := []struct {
		members []string
		quiet   string
	}{
		{[]string{"u1", "u2"}, "u3"},
		{[]string{"u2", "u3"}, "u1"},
		{[]string{"u1", "u3"}, "u2"},
	}
	for i, r := range rounds {
		if code, m := call(t, "PUT", group, testkit.APIKey, map[string]any{"recipientIds": r.members}); code != 200 {
			t.Fatalf("PUT: %d %v", code, m)
		}
		testkit.Produce(t, prod, testkit.Message("org", nil, func(m map[string]any) { m["data"] = map[string]any{"round": i} }))
		for _, sub := range r.members {
			f := clients[sub].Expect("observation/signal/notification/created")
			if !strings.Contains(string(f.Data), fmt.Sprintf(`"round":%d`, i)) {
				t.Errorf("round %d: %s got %s", i, sub, f.Data)
			}
		}
		clients[r.quiet].Quiet(300 * time.Millisecond)
		var got string
		env.Store.Pool.QueryRow(context.Background(), `SELECT string_agg(recipient_id, ' ' ORDER BY recipient_id) FROM notifications WHERE data->>'round' = $1`, fmt.Sprint(i)).Scan(&got)
		if got != strings.Join(r.members, " ") {
			t.Errorf("round %d: rows for %q, want exactly the members then, %v", i, got, r.members)
		}
	}
}

func TestTheMembersTopicIsAppliedInOrderAndBadRecordsBecomeDeadLetters(t *testing.T) {
	env := testkit.NewEnv(t)
	adm := kadm.NewClient(testkit.Producer(t, env.Broker))
	if _, err := adm.CreateTopic(context.Background(), 4, 1, nil, membersTopic); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, env, "SIGNAL_MEMBERS_TOPIC="+membersTopic)
	prod := testkit.Producer(t, env.Broker)
	send := func(key, value string) {
		t.Helper()
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Topic: membersTopic, Key: []byte(key), Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	change := func(scope, id, op string, rcpts ...string) string {
		return fmt.Sprintf(`{"scope":%q,"scopeId":%q,"op":%q,"recipientIds":[%s]}`, scope, id, op, quoted(rcpts))
	}
	send("org:org-9", change("org", "org-9", "add", "a", "b", "c"))
	send("org:org-9", change("org", "org-9", "remove", "b"))
	send("org:org-9", `{"scope":"org",`)                    // malformed
	send("org:org-9", change("org", "org-9", "merge", "z")) // invalid op
	for i := 0; i < 100; i++ {                              // flip-flops: only the order gives the end state
		send("org:org-9", change("org", "org-9", []string{"add", "remove"}[i%2], "flip"))
	}
	send("org:org-9", change("org", "org-9", "add", "d"))
	send("org:org-9", change("org", "org-9", "replace", "c", "d", "e"))
	send("merchant:m-1", change("merchant", "m-1", "add", "x"))
	waitCommitted(t, env.Broker, "SIGNAL_NOTIF_CONSUMER_GROUP-members", membersTopic, 20*time.Second)

	base := "http://" + p.addr
	if got := allPages(t, base+"/memberships/org/org-9", 100); strings.Join(got, " ") != "c d e" {
		t.Errorf("org-9 = %v, want c d e (the changes applied in order)", got)
	}
	if got := allPages(t, base+"/memberships/merchant/m-1", 100); strings.Join(got, " ") != "x" {
		t.Errorf("m-1 = %v", got)
	}
	var reasons string
	env.Store.Pool.QueryRow(context.Background(), `SELECT string_agg(reason, ' ' ORDER BY "offset") FROM dead_letters WHERE topic = $1`, membersTopic).Scan(&reasons)
	if reasons != "malformed_json invalid_field" {
		t.Errorf("dead letters of the members topic: %q, want malformed_json invalid_field", reasons)
	}

	// An event to org-9 now reaches the members the topic made.
	e := testkit.Dial(t, p.wsURL(), testkit.Token(t, "e"))
	e.Welcome()
	testkit.Produce(t, testkit.Producer(t, env.Broker), testkit.Message("org", nil, func(m map[string]any) { m["organizerId"] = "org-9" }))
	e.Expect("observation/signal/notification/created")

	// Replay sends members records back to the members handler: still
	// invalid for the same reasons (ingest would have said eventType is
	// missing), nothing stored as a notification.
	t.Setenv("SIGNAL_MEMBERS_TOPIC", membersTopic)
	out, errOut, code := run(t, "deadletters", "replay", "--all", "--database-url", env.DBURL)
	if code != 0 || !strings.Contains(out, "replayed 0 dead letter(s) into 0 notification(s); 2 still failing") || !strings.Contains(out, "invalid_field: 1") {
		t.Errorf("replay: %d %q %q", code, out, errOut)
	}
	var detail string
	env.Store.Pool.QueryRow(context.Background(), `SELECT detail FROM dead_letters WHERE reason = 'invalid_field'`).Scan(&detail)
	if !strings.Contains(detail, "op must be add, remove or replace") {
		t.Errorf("after replay the detail is %q: replay did not use the members handler", detail)
	}
}

func TestMutedTypesAndOrganizersProduceNoRowAndNoFrame(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	p := startServe(t, env)
	base := "http://" + p.addr
	// u1 mutes the type with its own token, u2 the organizer through an API key.
	if code, m := call(t, "PUT", base+"/preferences", testkit.Token(t, "u1"), map[string]any{"mutedTypes": []string{"PAYMENT_SUCCESS", "PAYMENT_SUCCESS"}}); code != 200 || fmt.Sprint(m["mutedTypes"]) != "[PAYMENT_SUCCESS]" || fmt.Sprint(m["mutedOrganizers"]) != "[]" {
		t.Fatalf("PUT /preferences as u1: %d %v", code, m)
	}
	if code, m := call(t, "PUT", base+"/preferences?recipientId=u2", testkit.APIKey, map[string]any{"mutedOrganizers": []string{"org-1"}}); code != 200 {
		t.Fatalf("PUT /preferences for u2: %d %v", code, m)
	}
	if code, m := call(t, "GET", base+"/preferences", testkit.Token(t, "u2"), nil); code != 200 || fmt.Sprint(m["mutedOrganizers"]) != "[org-1]" {
		t.Errorf("GET /preferences as u2: %d %v", code, m)
	}
	if code, m := call(t, "PUT", base+"/preferences?recipientId=u2", testkit.Token(t, "u1"), map[string]any{}); code != 403 || errCode(m) != "forbidden" {
		t.Errorf("u1 changing u2's preferences: %d %v", code, m)
	}
	for _, bad := range []string{`{"mutedTypes":"A"}`, `{"mutedColors":[]}`, `{"mutedTypes":["a\u0000"]}`} {
		if code, m := call(t, "PUT", base+"/preferences", testkit.Token(t, "u3"), bad); code != 400 || errCode(m) != "bad_request" {
			t.Errorf("PUT %s: %d %v", bad, code, m)
		}
	}
	call(t, "PUT", base+"/memberships/org/org-1", testkit.APIKey, map[string]any{"recipientIds": []string{"u1", "u2", "u3"}})
	clients := map[string]*testkit.Client{}
	for _, sub := range []string{"u1", "u2", "u3"} {
		clients[sub] = testkit.Dial(t, p.wsURL(), testkit.Token(t, sub))
		clients[sub].Welcome()
	}
	prod := testkit.Producer(t, env.Broker)
	testkit.Produce(t, prod, testkit.Message("org", nil, func(m map[string]any) { m["data"] = map[string]any{"n": 1} }))
	clients["u3"].Expect("observation/signal/notification/created")
	// Another event, neither muted type nor muted organizer, reaches all.
	testkit.Produce(t, prod, testkit.Message("users", []string{"u1", "u2", "u3"}, func(m map[string]any) {
		m["eventType"], m["organizerId"], m["data"] = "TICKET_SOLD", "org-2", map[string]any{"n": 2}
	}))
	for _, sub := range []string{"u1", "u2", "u3"} {
		f := clients[sub].Expect("observation/signal/notification/created")
		if !strings.Contains(string(f.Data), `"n":2`) {
			t.Errorf("%s got %s first: a muted notification was pushed", sub, f.Data)
		}
	}
	var rows string
	env.Store.Pool.QueryRow(context.Background(), `SELECT string_agg(recipient_id || '/' || (data->>'n'), ' ' ORDER BY recipient_id, data->>'n') FROM notifications`).Scan(&rows)
	if rows != "u1/2 u2/2 u3/1 u3/2" {
		t.Errorf("rows %q, want u1/2 u2/2 u3/1 u3/2", rows)
	}
	if n := procMetric(t, p, "signal_notifications_muted_total"); n != 2 {
		t.Errorf("signal_notifications_muted_total = %v, want 2", n)
	}
	// Unmuting takes effect for the next event.
	call(t, "PUT", base+"/preferences", testkit.Token(t, "u1"), map[string]any{})
	testkit.Produce(t, prod, testkit.Message("org", nil, nil))
	clients["u1"].Expect("observation/signal/notification/created")
	clients["u2"].Quiet(300 * time.Millisecond)
}

func TestATenThousandMemberEventRedeliveredAfterARewindAddsNoRow(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	p := startServe(t, env)
	var members []string
	for i := 0; i < 10_000; i++ {
		members = append(members, fmt.Sprintf("m%05d", i))
	}
	if code, m := call(t, "PUT", "http://"+p.addr+"/memberships/org/big", testkit.APIKey, map[string]any{"recipientIds": members}); code != 200 {
		t.Fatalf("PUT: %d %v", code, m)
	}
	first := testkit.Dial(t, p.wsURL(), testkit.Token(t, "m00000"))
	last := testkit.Dial(t, p.wsURL(), testkit.Token(t, "m09999"))
	first.Welcome()
	last.Welcome()
	testkit.Produce(t, testkit.Producer(t, env.Broker), testkit.Message("org", nil, func(m map[string]any) { m["organizerId"] = "big" }))
	first.Expect("observation/signal/notification/created")
	last.Expect("observation/signal/notification/created")
	waitCaughtUp(t, env.Broker, 20*time.Second)
	rows := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`)
	txs := testkit.Count(t, env.Store, `SELECT count(DISTINCT xmin::text) FROM notifications`)
	if rows != 10_000 || txs != 2 {
		t.Fatalf("%d rows in %d transactions, want 10000 in 2 (ingest.max_rows_per_tx 8192: 2048, then the rest)", rows, txs)
	}
	if _, err := p.term(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	rewind(t, env.Broker, "SIGNAL_NOTIF_CONSUMER_GROUP", testkit.Topic)
	startServe(t, env) // stopped by the test's cleanup
	waitCaughtUp(t, env.Broker, 20*time.Second)
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`); n != 10_000 {
		t.Errorf("%d rows after the redelivery, want 10000", n)
	}
	if n := testkit.Count(t, env.Store, `SELECT count(DISTINCT id) FROM notifications`); n != 10_000 {
		t.Errorf("%d distinct ids", n)
	}
}

// rewind commits offset 0 for every partition of topic, as an operator
// replaying a topic would.
func rewind(t *testing.T, broker, group, topic string) {
	t.Helper()
	adm := kadm.NewClient(testkit.Producer(t, broker))
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	to := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) { to.AddOffset(o.Topic, o.Partition, 0, -1) })
	if _, err := adm.CommitOffsets(context.Background(), group, to); err != nil {
		t.Fatal(err)
	}
}

// waitCommitted waits until group has committed the end of every
// partition of topic that holds records.
func waitCommitted(t *testing.T, broker, group, topic string, timeout time.Duration) {
	t.Helper()
	adm := kadm.NewClient(testkit.Producer(t, broker))
	ctx := context.Background()
	testkit.Eventually(t, timeout, group+" to commit to the end of "+topic, func() bool {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return false
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			if c, found := committed.Lookup(o.Topic, o.Partition); o.Offset > 0 && (!found || c.At != o.Offset) {
				ok = false
			}
		})
		return ok
	})
}

// procMetric reads one counter from a serve process's /metrics.
func procMetric(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscanf(v, "%g", &f)
			return f
		}
	}
	return -1
}

func quoted(ss []string) string {
	var out []string
	for _, s := range ss {
		out = append(out, fmt.Sprintf("%q", s))
	}
	return strings.Join(out, ",")
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "members.csv")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
