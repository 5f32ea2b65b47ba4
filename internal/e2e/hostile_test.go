package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/testkit"
)

func TestHostileFramesGetAnErrorAndTheClientStays(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, func(c *config.Config) { c.WebSocket.MaxRooms = 3; c.WebSocket.MaxMessageBytes = 1024 })
	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1", "*"))
	c.Welcome()
	for _, tt := range []struct{ frame, code string }{
		{`not json`, "bad_request"},
		{`{"action":"join","room":"r","extra":true}`, "bad_request"},
		{`{"action":"join","room":"r"}{"action":"join","room":"s"}`, "bad_request"},
		{`{"action":"fly"}`, "unknown_action"},
		{`{"action":""}`, "bad_request"},
		{`{"action":"join"}`, "invalid_room"},
		{`{"action":"join","room":"a\u0000b"}`, "invalid_room"},
		{`{"action":"join","room":"` + strings.Repeat("x", 513) + `"}`, "invalid_room"},
		{`{"action":"join","room":["a"]}`, "bad_request"},
		{`{"action":"leave","room":"never-joined"}`, "not_joined"},
		{`{"action":"ping","room":"x"}`, "bad_request"},
		{`[{"action":"ping"}]`, "bad_request"},
		{`{"action":"join","room":"signal/notification/u1","since":"` + strings.Repeat("9", 40) + `"}`, "invalid_since"},
	} {
		c.Send(tt.frame)
		c.ExpectError(tt.code)
		if tt.code == "invalid_since" { // the stream then starts over at its head
			c.Expect("signal/system/joined")
			c.Expect("signal/system/reset")
		}
	}
	c.SendBinary([]byte{0, 1, 2})
	c.ExpectError("bad_request")

	// Rooms are bounded: own room + 2 more, then too_many_rooms.
	c.Send(`{"action":"join","room":"r1"}`)
	c.Expect("signal/system/joined")
	c.Send(`{"action":"join","room":"r2"}`)
	c.Expect("signal/system/joined")
	c.Send(`{"action":"join","room":"r3"}`)
	c.ExpectError("too_many_rooms")
	c.Send(`{"action":"join","room":"r1"}`) // a room it is already in is fine
	c.Expect("signal/system/joined")

	c.Send(`{"action":"ping"}`)
	c.Expect("signal/system/pong") // still connected and served

	// A frame over websocket.max_message_bytes closes with 1009.
	c.Send(`{"action":"join","room":"` + strings.Repeat("y", 2000) + `"}`)
	if code := c.Closed(5 * time.Second); code != 1009 {
		t.Errorf("close code %d, want 1009", code)
	}
}

func TestForgedTokensAreRefusedBeforeTheUpgrade(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	claims := auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
	payload, _ := json.Marshal(claims)
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	none := seg(`{"alg":"none","typ":"JWT"}`) + "." + seg(string(payload)) + "."
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString([]byte(testkit.JWTSecret))
	hs384, _ := jwt.NewWithClaims(jwt.SigningMethodHS384, claims).SignedString([]byte(testkit.JWTSecret))
	wrongSecret, _ := auth.Sign("not-the-secret", "u1", nil, time.Hour)
	good := testkit.Token(t, "u1")
	parts := strings.Split(good, ".")
	otherSub := parts[0] + "." + seg(`{"sub":"admin","exp":9999999999}`) + "." + parts[2]
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, auth.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: "u1", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Minute))}}).SignedString([]byte(testkit.JWTSecret))
	for name, tok := range map[string]string{
		"alg none": none, "HS512": hs512, "HS384": hs384, "wrong signature": wrongSecret,
		"payload swapped": otherSub, "expired": expired, "empty": "",
	} {
		t.Run(name, func(t *testing.T) {
			for _, way := range []struct{ url, header string }{
				{in.WSURL(), tok}, // Authorization: Bearer
				{in.WSURL() + "?token=" + url.QueryEscape(tok), ""}, // ?token=
			} {
				_, hs, derr := testkit.TryDial(t, way.url, way.header)
				if derr == nil || hs == nil || hs.StatusCode != 401 {
					t.Fatalf("upgrade with %s: %v (status %v), want 401", name, derr, hs)
				}
				b, _ := io.ReadAll(hs.Body)
				if !strings.Contains(string(b), `"code":"unauthorized"`) {
					t.Errorf("401 body %q", b)
				}
			}
		})
	}
}

func TestASlowClientIsDroppedWithoutSlowingTheOthers(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil) // websocket.queue_bytes 1 MiB: the slow client passes it after ~20 frames
	slow := testkit.DialNoRead(t, in.WSURL(), testkit.Token(t, "slow"))
	fast := testkit.Dial(t, in.WSURL(), testkit.Token(t, "fast"))
	fast.Welcome()

	const frames = 300
	payload := strings.Repeat("p", 64<<10)
	start := time.Now()
	for i := 0; i < frames; i++ {
		code, body := call(t, "POST", in.URL()+"/socket/websocket/clients/broadcast", testkit.APIKey, map[string]any{"topic": "load", "data": map[string]any{"i": i, "p": payload}})
		if code != 200 {
			t.Fatalf("broadcast %d: %d %v", i, code, body)
		}
	}
	for i := 0; i < frames; i++ {
		f := fast.Next(10 * time.Second)
		if f.Topic != "load" {
			t.Fatalf("frame %d: %s", i, f.Topic)
		}
		var d struct {
			I int `json:"i"`
		}
		if json.Unmarshal(f.Data, &d); d.I != i {
			t.Fatalf("frame %d carries %d: lost or reordered", i, d.I)
		}
	}
	t.Logf("the reading client got %d frames of 64 KiB in %s", frames, time.Since(start))
	testkit.Eventually(t, 10*time.Second, "the slow client to be dropped", func() bool {
		return metric(t, in, "signal_websocket_slow_clients_dropped_total") == 1 && !slow.Alive()
	})
	fast.Send(`{"action":"ping"}`)
	fast.Expect("signal/system/pong")
}

func TestNamesThatLookLikeSQLAreJustNames(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	evil := `x'); DROP TABLE notifications; --`
	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, evil, "*"))
	c.Welcome()
	room := `r' OR '1'='1`
	c.Send(fmt.Sprintf(`{"action":"join","room":%q}`, room))
	c.Expect("signal/system/joined")
	testkit.Produce(t, testkit.Producer(t, env.Broker), testkit.Message("users", []string{evil}, nil))
	if f := c.Expect("observation/signal/notification/created"); f.Room != "signal/notification/"+evil {
		t.Errorf("room %q", f.Room)
	}
	if code, _ := call(t, "POST", in.URL()+"/socket/websocket/clients/rooms/"+url.PathEscape(room)+"/send", testkit.APIKey, map[string]any{"topic": "t"}); code != 200 {
		t.Fatal(code)
	}
	c.Expect("t")
	if code, body := call(t, "GET", in.URL()+"/notifications?recipientId="+url.QueryEscape(evil), testkit.APIKey, nil); code != 200 || len(body["items"].([]any)) != 1 {
		t.Errorf("inbox of %q: %d %v", evil, code, body)
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE recipient_id = $1`, evil); n != 1 {
		t.Errorf("rows for %q: %d", evil, n)
	}
}

// metric reads one counter from /metrics.
func metric(t *testing.T, in *testkit.Instance, name string) float64 {
	t.Helper()
	resp, err := http.Get(in.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			var v float64
			fmt.Sscanf(strings.TrimPrefix(line, name+" "), "%g", &v)
			return v
		}
	}
	return -1
}
