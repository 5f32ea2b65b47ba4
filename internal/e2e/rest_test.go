package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/apispec"
	"github.com/signal-notify/signal/internal/testkit"
)

// call makes one HTTP request and decodes a JSON answer. Every answer is
// checked against api/openapi.yaml: its status, headers and body.
func call(t *testing.T, method, u, cred string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if err := apispec.CheckResponse(req, resp.StatusCode, resp.Header, raw); err != nil {
		t.Errorf("the answer breaks the API's contract: %v", err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", method, u, raw)
		}
	}
	if ct := resp.Header.Get("Content-Type"); len(raw) > 0 && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, u, ct)
	}
	return resp.StatusCode, out
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	if msg, _ := e["message"].(string); msg == "" && c != "" {
		return c + " (without a message)"
	}
	return c
}

func TestRESTSendsReachTheirClients(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	rooms := []string{"ops/alerts", "team space/é☃", "a%2Fb"}
	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1", "*"))
	id := c.Welcome()
	other := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u2"))
	other.Welcome()
	for _, r := range rooms {
		b, _ := json.Marshal(map[string]string{"action": "join", "room": r})
		c.Send(string(b))
		c.Expect("signal/system/joined")
	}
	base := in.URL() + "/socket/websocket/clients"

	t.Run("broadcast reaches every client", func(t *testing.T) {
		code, body := call(t, "POST", base+"/broadcast", testkit.APIKey, map[string]any{"topic": "sys/hello", "data": map[string]int{"n": 1}})
		if code != 200 || body["status"] != "sent" {
			t.Fatalf("%d %v", code, body)
		}
		for _, cl := range []*testkit.Client{c, other} {
			f := cl.Expect("sys/hello")
			if f.Room != "" || string(f.Data) != `{"n":1}` {
				t.Errorf("broadcast frame %+v", f)
			}
		}
	})
	for _, room := range rooms {
		t.Run("room send to "+room, func(t *testing.T) {
			code, body := call(t, "POST", base+"/rooms/"+url.PathEscape(room)+"/send", testkit.APIKey, map[string]any{"topic": "room/msg", "data": "x"})
			if code != 200 {
				t.Fatalf("%d %v", code, body)
			}
			f := c.Expect("room/msg")
			if f.Room != room || string(f.Data) != `"x"` {
				t.Errorf("frame %+v, want room %q", f, room)
			}
			other.Quiet(50 * time.Millisecond)
		})
	}
	t.Run("client send reaches only that client", func(t *testing.T) {
		code, _ := call(t, "POST", base+"/"+id+"/send", testkit.APIKey, map[string]any{"topic": "direct"})
		if code != 200 {
			t.Fatal(code)
		}
		if f := c.Expect("direct"); string(f.Data) != "null" {
			t.Errorf("data %s, want null when not given", f.Data)
		}
		other.Quiet(50 * time.Millisecond)
	})
	t.Run("clients page through with limit and cursor, oldest first", func(t *testing.T) {
		code, first := call(t, "GET", base+"?limit=1", testkit.APIKey, nil)
		list, _ := first["clients"].([]any)
		next, _ := first["nextCursor"].(string)
		if code != 200 || len(list) != 1 || list[0].(map[string]any)["id"] != id || next == "" || first["total"] != 2.0 {
			t.Fatalf("first page: %d %v", code, first)
		}
		code, second := call(t, "GET", base+"?limit=1&cursor="+url.QueryEscape(next), testkit.APIKey, nil)
		list, _ = second["clients"].([]any)
		if code != 200 || len(list) != 1 || list[0].(map[string]any)["subject"] != "u2" || second["nextCursor"] != nil {
			t.Fatalf("second page: %d %v", code, second)
		}
		for _, bad := range []string{"?limit=0", "?limit=1001", "?cursor=nope"} {
			if code, body := call(t, "GET", base+bad, testkit.APIKey, nil); code != 400 || errCode(body) != "bad_request" {
				t.Errorf("%s: %d %v", bad, code, body)
			}
		}
	})
	t.Run("status names this instance with its clients", func(t *testing.T) {
		code, st := call(t, "GET", in.URL()+"/status", testkit.APIKey, nil)
		cluster, _ := st["cluster"].([]any)
		if code != 200 || len(cluster) != 1 || cluster[0].(map[string]any)["id"] != in.Info.InstanceID || cluster[0].(map[string]any)["clients"] != 2.0 {
			t.Errorf("status %d %v", code, st)
		}
	})
	t.Run("clients lists both with rooms and instance", func(t *testing.T) {
		code, body := call(t, "GET", base, testkit.APIKey, nil)
		list, _ := body["clients"].([]any)
		if code != 200 || len(list) != 2 {
			t.Fatalf("%d %v", code, body)
		}
		raw, _ := json.Marshal(list)
		for _, want := range []string{id, `"subject":"u1"`, `"team space/é☃"`, in.Info.InstanceID, "connectedSince"} {
			if !strings.Contains(string(raw), want) {
				t.Errorf("clients %s lacks %s", raw, want)
			}
		}
		// The welcome's name and the API's time format (issue 27, item 11):
		// clientId, id kept beside it; milliseconds, as createdAt.
		for _, c := range list {
			c := c.(map[string]any)
			since, _ := c["connectedSince"].(string)
			if c["clientId"] == nil || c["clientId"] != c["id"] || !millis.MatchString(since) {
				t.Errorf("client %v: want clientId (= id) and connectedSince in milliseconds", c)
			}
		}
	})
}

// millis is a time as the API writes every time: RFC 3339, UTC, milliseconds.
var millis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestRESTErrors(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	base := in.URL() + "/socket/websocket/clients"
	ok := map[string]any{"topic": "t", "data": 1}
	huge := `{"topic":"t","data":"` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name, method, path, cred string
		body                     any
		status                   int
		code                     string
	}{
		{"no key", "POST", "/broadcast", "", ok, 401, "unauthorized"},
		{"wrong key", "POST", "/broadcast", "nope", ok, 401, "unauthorized"},
		{"a JWT is not an API key", "POST", "/broadcast", testkit.Token(t, "u1"), ok, 401, "unauthorized"},
		{"not JSON", "POST", "/broadcast", testkit.APIKey, "{", 400, "bad_request"},
		{"empty body", "POST", "/broadcast", testkit.APIKey, "", 400, "bad_request"},
		{"a list", "POST", "/broadcast", testkit.APIKey, "[]", 400, "bad_request"},
		{"missing topic", "POST", "/broadcast", testkit.APIKey, map[string]any{"data": 1}, 400, "bad_request"},
		{"empty topic", "POST", "/broadcast", testkit.APIKey, map[string]any{"topic": ""}, 400, "bad_request"},
		{"unknown field", "POST", "/broadcast", testkit.APIKey, map[string]any{"topic": "t", "extra": 1}, 400, "bad_request"},
		{"two objects", "POST", "/broadcast", testkit.APIKey, `{"topic":"t"}{"topic":"u"}`, 400, "bad_request"},
		{"topic with control character", "POST", "/broadcast", testkit.APIKey, map[string]any{"topic": "a\nb"}, 400, "bad_request"},
		{"body over 1 MiB", "POST", "/broadcast", testkit.APIKey, huge, 413, "payload_too_large"},
		{"room with control character", "POST", "/rooms/a%07b/send", testkit.APIKey, ok, 400, "invalid_room"},
		{"room too long", "POST", "/rooms/" + strings.Repeat("r", 513) + "/send", testkit.APIKey, ok, 400, "invalid_room"},
		{"unknown client", "POST", "/no-such-client/send", testkit.APIKey, ok, 404, "not_found"},
		{"clients without key", "GET", "", "", nil, 401, "unauthorized"},
		{"unknown route", "GET", "/nope/nope/nope", testkit.APIKey, nil, 404, "not_found"},
		{"wrong method", "GET", "/broadcast", testkit.APIKey, nil, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, tt.method, base+tt.path, tt.cred, tt.body)
			if code != tt.status || errCode(body) != tt.code {
				t.Errorf("got %d %v, want %d %s", code, body, tt.status, tt.code)
			}
		})
	}
	t.Run("401 carries WWW-Authenticate", func(t *testing.T) {
		resp, err := http.Post(base+"/broadcast", "application/json", strings.NewReader(`{"topic":"t"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Error("no WWW-Authenticate header")
		}
	})
	t.Run("metrics and the console redirect match the contract too", func(t *testing.T) {
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for _, path := range []string{"/metrics", "/console"} {
			req, _ := http.NewRequest("GET", in.URL()+path, nil)
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err := apispec.CheckResponse(req, resp.StatusCode, resp.Header, raw); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("health and readiness", func(t *testing.T) {
		if code, body := call(t, "GET", in.URL()+"/healthz", "", nil); code != 200 || body["status"] != "ok" {
			t.Errorf("healthz %d %v", code, body)
		}
		code, body := call(t, "GET", in.URL()+"/readyz", "", nil)
		checks, _ := body["checks"].(map[string]any)
		if code != 200 || checks["database"] != "ok" || checks["kafka"] != "ok" || checks["relay"] != "ok" {
			t.Errorf("readyz %d %v", code, body)
		}
	})
}
