package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/testkit"
)

// Bytes that break the identifier rule, or a body that is not UTF-8, get a
// 400 before anything reaches the database or a client — never a 503 (which
// pages someone) and never a text frame browsers close the connection on.
func TestBadBytesInRESTCallsAreA400(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	browser := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1", "ops/*"))
	clientID := browser.Welcome()
	browser.Send(`{"action":"join","room":"ops/a"}`)
	browser.Expect("signal/system/joined")
	base := in.URL() + "/socket/websocket/clients"
	u1 := testkit.Token(t, "u1")

	tests := []struct {
		name, method, url, cred string
		body                    []byte
		code                    string
	}{
		{"broadcast data that is not UTF-8", "POST", base + "/broadcast", testkit.APIKey, []byte("{\"topic\":\"t\",\"data\":\"\xff\"}"), "bad_request"},
		{"a room send with data that is not UTF-8", "POST", base + "/rooms/ops%2Fa/send", testkit.APIKey, []byte("{\"topic\":\"t\",\"data\":{\"k\":\"a\xc3\"}}"), "bad_request"},
		{"a client send with data that is not UTF-8", "POST", base + "/" + clientID + "/send", testkit.APIKey, []byte("{\"topic\":\"t\",\"data\":[\"\xed\xa0\x80\"]}"), "bad_request"},
		{"a topic that is not UTF-8", "POST", base + "/broadcast", testkit.APIKey, []byte("{\"topic\":\"\xfe\",\"data\":1}"), "bad_request"},
		{"a clientId with NUL", "POST", base + "/a%00/send", testkit.APIKey, []byte(`{"topic":"t"}`), "bad_request"},
		{"a clientId that is not UTF-8", "POST", base + "/%ff/send", testkit.APIKey, []byte(`{"topic":"t"}`), "bad_request"},
		{"a clientId over 256 bytes", "POST", base + "/" + strings.Repeat("c", 257) + "/send", testkit.APIKey, []byte(`{"topic":"t"}`), "bad_request"},
		{"a room name with NUL", "POST", base + "/rooms/ops%2F%00/send", testkit.APIKey, []byte(`{"topic":"t"}`), "invalid_room"},
		{"a recipientId with NUL", "GET", in.URL() + "/notifications?recipientId=u2%00", testkit.APIKey, nil, "bad_request"},
		{"a recipientId that is not UTF-8", "GET", in.URL() + "/notifications?recipientId=%ff", testkit.APIKey, nil, "bad_request"},
		{"a recipientId with DEL", "GET", in.URL() + "/notifications/unread-count?recipientId=u%7F", testkit.APIKey, nil, "bad_request"},
		{"a recipientId over 256 bytes", "GET", in.URL() + "/notifications?recipientId=" + strings.Repeat("r", 257), testkit.APIKey, nil, "bad_request"},
		{"read-all for a recipientId with a newline", "POST", in.URL() + "/notifications/read-all?recipientId=u1%0A", testkit.APIKey, nil, "bad_request"},
		{"a token's own inbox with a recipientId with NUL", "GET", in.URL() + "/notifications?recipientId=u1%00", u1, nil, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.body != nil {
				body = tt.body
			}
			status, answer := call(t, tt.method, tt.url, tt.cred, body)
			if status != http.StatusBadRequest || errCode(answer) != tt.code {
				t.Errorf("%d %v, want 400 %s", status, answer, tt.code)
			}
		})
	}
	browser.Quiet(300 * time.Millisecond)
	if code, _ := call(t, "POST", base+"/broadcast", testkit.APIKey, map[string]any{"topic": "still/here", "data": "é"}); code != 200 {
		t.Fatalf("a valid broadcast: %d", code)
	}
	if f := browser.Expect("still/here"); string(f.Data) != `"é"` {
		t.Errorf("data %s", f.Data)
	}
	resp, err := http.Get(in.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	all, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(all), "\n") {
		if strings.HasPrefix(line, `signal_http_requests_total{code="5`) && !strings.Contains(line, "/readyz") { // readyz: 503 until the group is joined
			t.Errorf("a 5xx was answered: %s", line)
		}
	}
}
