package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/testkit"
)

func TestUsersMessageReachesBothRecipientsOnceWithTheContractPayload(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	u1 := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1"))
	u2 := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u2"))
	u1.Welcome()
	u2.Welcome()

	p := testkit.Producer(t, env.Broker)
	testkit.Produce(t, p, testkit.Message("users", []string{"u1", "u2", "u1"}, func(m map[string]any) {
		m["occurredAt"] = "2026-11-27T09:00:00Z"
	}))

	for _, c := range []struct {
		client *testkit.Client
		sub    string
	}{{u1, "u1"}, {u2, "u2"}} {
		f := c.client.Expect("observation/signal/notification/created")
		if f.Room != "signal/notification/"+c.sub {
			t.Errorf("%s: room %q", c.sub, f.Room)
		}
		// The payload's exact fields and JSON types (contract section 4).
		var raw map[string]any
		if err := json.Unmarshal(f.Data, &raw); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"id": "string", "type": "string", "organizerId": "string", "content": "string",
			"actionUrl": "string", "data": "object", "isRead": "bool", "createdAt": "string"}
		if len(raw) != len(want) {
			t.Errorf("%s: payload has fields %v, want exactly %v", c.sub, keys(raw), keys(want))
		}
		for k, typ := range want {
			if got := jsonType(raw[k]); got != typ {
				t.Errorf("%s: %s is %s, want %s", c.sub, k, got, typ)
			}
		}
		if raw["type"] != "PAYMENT_SUCCESS" || raw["organizerId"] != "org-1" || raw["isRead"] != false ||
			raw["content"] != "Alice completed a payment for Ticket" || raw["actionUrl"] != "/payments/p-1" {
			t.Errorf("%s: payload %s", c.sub, f.Data)
		}
		if _, err := time.Parse(time.RFC3339, raw["createdAt"].(string)); err != nil {
			t.Errorf("createdAt %v is not RFC 3339", raw["createdAt"])
		}
		if d, _ := json.Marshal(raw["data"]); string(d) != `{"payment":{"id":"p-1","subject":"Ticket"}}` {
			t.Errorf("data = %s", d)
		}
		c.client.Quiet(300 * time.Millisecond) // exactly once
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`); n != 2 {
		t.Errorf("rows = %d, want 2 (u1 listed twice counts once)", n)
	}
}

func TestOrgAndMerchantMessagesReachTheirMembers(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	if _, errOut, code := run(t, "members", "add", "--org", "org-1", "u1", "u2", "--database-url", env.DBURL); code != 0 {
		t.Fatalf("members add --org: %d %s", code, errOut)
	}
	if _, errOut, code := run(t, "members", "add", "--merchant", "m-7", "u3", "--database-url", env.DBURL); code != 0 {
		t.Fatalf("members add --merchant: %d %s", code, errOut)
	}
	in := env.Serve(t, nil)
	clients := map[string]*testkit.Client{}
	for _, sub := range []string{"u1", "u2", "u3"} {
		clients[sub] = testkit.Dial(t, in.WSURL(), testkit.Token(t, sub))
		clients[sub].Welcome()
	}
	p := testkit.Producer(t, env.Broker)

	testkit.Produce(t, p, testkit.Message("org", nil, nil))
	clients["u1"].Expect("observation/signal/notification/created")
	clients["u2"].Expect("observation/signal/notification/created")
	clients["u3"].Quiet(300 * time.Millisecond)

	testkit.Produce(t, p, testkit.Message("merchant", nil, func(m map[string]any) { m["merchantId"] = "m-7" }))
	clients["u3"].Expect("observation/signal/notification/created")
	clients["u1"].Quiet(200 * time.Millisecond)
	clients["u2"].Quiet(0)

	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`); n != 3 {
		t.Errorf("rows = %d, want 3", n)
	}
}

func TestMalformedMessagesBecomeDeadLettersAndConsumptionGoesOn(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	u1 := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1"))
	u1.Welcome()
	p := testkit.Producer(t, env.Broker)

	bad := map[string][]byte{
		"malformed_json": []byte(`{"eventType": "PAYMENT_SUCCESS", oops`),
		"missing_field":  testkit.Message("users", []string{"u1"}, func(m map[string]any) { delete(m, "actorId") }),
		"invalid_scope":  testkit.Message("everyone", []string{"u1"}, nil),
		"no_recipients":  testkit.Message("org", nil, func(m map[string]any) { m["organizerId"] = "org-without-members" }),
	}
	for _, v := range bad {
		testkit.Produce(t, p, v)
	}
	testkit.Produce(t, p, testkit.Message("users", []string{"u1"}, nil))

	f := u1.Expect("observation/signal/notification/created")
	if !strings.Contains(string(f.Data), `"type":"PAYMENT_SUCCESS"`) {
		t.Errorf("frame %s", f.Data)
	}
	testkit.Eventually(t, 10*time.Second, "4 dead letters", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM dead_letters`) == 4
	})
	for reason, value := range bad {
		var stored []byte
		var detail string
		err := env.Store.Pool.QueryRow(context.Background(), `SELECT value, detail FROM dead_letters WHERE reason = $1`, reason).Scan(&stored, &detail)
		if err != nil {
			t.Errorf("%s: %v", reason, err)
			continue
		}
		if string(stored) != string(value) || detail == "" {
			t.Errorf("%s: stored %q detail %q; want the raw bytes and a detail", reason, stored, detail)
		}
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`); n != 1 {
		t.Errorf("rows = %d, want 1", n)
	}
}

func TestRedeliveryAfterAnOffsetResetCreatesNoNewRows(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	p := testkit.Producer(t, env.Broker)
	var values [][]byte
	for i := 0; i < 50; i++ {
		values = append(values, testkit.Message("users", []string{"u1", "u2"}, nil))
	}
	values = append(values, []byte("not json"))
	testkit.Produce(t, p, values...)
	testkit.Eventually(t, 15*time.Second, "100 rows", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`) == 100
	})
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}

	// Rewind the group to the start of every partition, as an operator would.
	adm := kadm.NewClient(testkit.Producer(t, env.Broker))
	ctx := context.Background()
	ends, err := adm.ListEndOffsets(ctx, testkit.Topic)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, "SIGNAL_NOTIF_CONSUMER_GROUP")
	if err != nil {
		t.Fatal(err)
	}
	toStart := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) {
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.At != o.Offset {
			t.Errorf("partition %d: committed %d, end %d: offsets must be committed after handling", o.Partition, c.At, o.Offset)
		}
		toStart.AddOffset(o.Topic, o.Partition, 0, -1)
	})
	if _, err := adm.CommitOffsets(ctx, "SIGNAL_NOTIF_CONSUMER_GROUP", toStart); err != nil {
		t.Fatal(err)
	}

	env.Serve(t, nil)
	testkit.Eventually(t, 15*time.Second, "the group to consume to the end again", func() bool {
		c, err := adm.FetchOffsets(ctx, "SIGNAL_NOTIF_CONSUMER_GROUP")
		if err != nil {
			return false
		}
		done := true
		ends.Each(func(o kadm.ListedOffset) {
			if got, ok := c.Lookup(o.Topic, o.Partition); !ok || got.At != o.Offset {
				done = false
			}
		})
		return done
	})
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`); n != 100 {
		t.Errorf("rows after redelivery = %d, want 100", n)
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM dead_letters`); n != 1 {
		t.Errorf("dead letters after redelivery = %d, want 1", n)
	}
}

func TestWebSocketAuthAndActions(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)

	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, auth.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: "u1", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))}}).SignedString([]byte(testkit.JWTSecret))
	wrongKey, _ := auth.Sign("another-secret", "u1", nil, time.Hour)
	for name, tok := range map[string]string{"no token": "", "bad signature": wrongKey, "expired": expired, "garbage": "x.y.z"} {
		t.Run("refuses "+name+" with 401", func(t *testing.T) {
			_, resp, err := testkit.TryDial(t, in.WSURL(), tok)
			if err == nil {
				t.Fatal("the upgrade succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %v, want 401", resp)
			}
		})
	}
	t.Run("accepts the token in the query string", func(t *testing.T) {
		c := testkit.Dial(t, in.WSURL()+"?token="+testkit.Token(t, "u9"), "")
		c.Welcome()
	})

	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1", "ops/*"))
	f := c.Expect("signal/system/welcome")
	if !strings.Contains(string(f.Data), `"rooms":["signal/notification/u1"]`) {
		t.Errorf("welcome %s", f.Data)
	}
	c.Send(`{"action":"ping"}`)
	c.Expect("signal/system/pong")
	c.Send(`{"action":"join","room":"signal/notification/u2"}`)
	c.ExpectError("forbidden")
	c.Send(`{"action":"join","room":"ops/alerts"}`)
	if f := c.Expect("signal/system/joined"); !strings.Contains(string(f.Data), `"room":"ops/alerts"`) {
		t.Errorf("joined %s", f.Data)
	}
	c.Send(`{"action":"leave","room":"ops/alerts"}`)
	c.Expect("signal/system/left")

	// The refused join left u1 out of u2's room: u2's notification is not seen.
	p := testkit.Producer(t, env.Broker)
	testkit.Produce(t, p, testkit.Message("users", []string{"u2"}, nil), testkit.Message("users", []string{"u1"}, nil))
	f = c.Expect("observation/signal/notification/created")
	if f.Room != "signal/notification/u1" {
		t.Errorf("got a notification of %s", f.Room)
	}
	c.Quiet(300 * time.Millisecond)
}

func keys(m any) []string {
	var out []string
	switch m := m.(type) {
	case map[string]any:
		for k := range m {
			out = append(out, k)
		}
	case map[string]string:
		for k := range m {
			out = append(out, k)
		}
	}
	return out
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "bool"
	case float64:
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case nil:
		return "null"
	}
	return "?"
}
