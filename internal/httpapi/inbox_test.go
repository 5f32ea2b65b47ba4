package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/httpapi"
	"github.com/signal-notify/signal/internal/hub"
	"github.com/signal-notify/signal/internal/metrics"
)

// The handlers' side of the sync stream, with an Inbox that answers from
// fixed values and records the order of its calls (the store's side runs
// against PostgreSQL in internal/store).

type inboxCalls struct {
	mu    sync.Mutex
	calls []string
	rows  []*event.Row
	pos   int64
	ch    event.Change
}

func (f *inboxCalls) call(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

func (f *inboxCalls) ListNotifications(context.Context, string, event.InboxFilter, int, int64) ([]*event.Row, error) {
	f.call("list")
	return f.rows, nil
}

func (f *inboxCalls) Notification(_ context.Context, _ string, id uuid.UUID) (*event.Row, error) {
	f.call("one")
	for _, r := range f.rows {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, event.ErrNotFound
}

func (f *inboxCalls) Counts(context.Context, string) (event.Counts, int64, error) {
	f.call("counts")
	return event.Counts{Unread: 3, Unseen: 1, Total: 12}, f.pos, nil
}

func (f *inboxCalls) StreamPos(context.Context, string) (int64, error) {
	f.call("pos")
	return f.pos, nil
}

func (f *inboxCalls) Mark(_ context.Context, _ string, op event.Op, ids []uuid.UUID) (event.Change, error) {
	f.call("mark")
	ch := f.ch
	ch.Op, ch.IDs, ch.Found = op, ids, ids
	return ch, nil
}

func (f *inboxCalls) MarkAll(_ context.Context, _ string, op event.Op) (event.Change, error) {
	f.call("mark all")
	ch := f.ch
	ch.Op, ch.All = op, true
	return ch, nil
}

// frames is a Relay that keeps the frames sent to rooms.
type frames struct {
	mu   sync.Mutex
	sent []string
}

func (r *frames) SendRoom(_ context.Context, _ string, frame []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, string(frame))
	return nil
}
func (r *frames) Broadcast(context.Context, []byte) error           { return nil }
func (r *frames) SendClient(context.Context, string, []byte) error  { return nil }
func (r *frames) Clients(context.Context) ([]hub.ClientInfo, error) { return nil, nil }
func (r *frames) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sent
	r.sent = nil
	return s
}

func inboxServer(t *testing.T, in *inboxCalls, relay *frames) func(method, path string) (int, string) {
	t.Helper()
	h := httpapi.New(httpapi.Options{Inbox: in, Relay: relay, APIKeys: auth.NewAPIKeys([]string{"key-1"}), Metrics: metrics.New(), MetricsElsewhere: true})
	return func(method, path string) (int, string) {
		t.Helper()
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader(`{"all":true}`)
		}
		req := httptest.NewRequest(method, path, body)
		req.Header.Set("Authorization", "Bearer key-1")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
}

func TestInboxPagesAndCountsAnswerTheStreamPosition(t *testing.T) {
	id := uuid.MustParse("01a21c61-12e3-8527-828b-5db963cee5ab")
	in := &inboxCalls{pos: 42, rows: []*event.Row{{ID: id, Seq: 40, RecipientID: "u1", Type: "T", Data: json.RawMessage(`{}`), CreatedAt: time.Now()}}}
	do := inboxServer(t, in, &frames{})

	code, body := do("GET", "/notifications?recipientId=u1")
	var page struct {
		Items []struct {
			ID  uuid.UUID `json:"id"`
			Pos int64     `json:"pos"`
		} `json:"items"`
		Pos int64 `json:"pos"`
	}
	if err := json.Unmarshal([]byte(body), &page); code != 200 || err != nil || page.Pos != 42 || len(page.Items) != 1 || page.Items[0].Pos != 40 || page.Items[0].ID != id {
		t.Errorf("GET /notifications: %d %s", code, body)
	}
	// The position is read before the page: the page reflects at least
	// every change up to it.
	if strings.Join(in.calls, ",") != "pos,list" {
		t.Errorf("calls %v, want the position read before the page", in.calls)
	}
	if code, body := do("GET", "/notifications/counts?recipientId=u1"); code != 200 || body != `{"unread":3,"unseen":1,"total":12,"pos":42}`+"\n" {
		t.Errorf("GET counts: %d %s", code, body)
	}
	if code, body := do("GET", "/notifications/"+id.String()+"?recipientId=u1"); code != 200 || !strings.Contains(body, `"pos":40`) {
		t.Errorf("GET one: %d %s", code, body)
	}
}

// A state change reaches devices as a change of the recipient's stream,
// from the store (Inbox.Mark stages it): the routes send no updated frame
// of their own; the read routes still send the deprecated read frame.
func TestStateRoutesSendOnlyTheDeprecatedReadFrame(t *testing.T) {
	id := uuid.MustParse("01a21c61-12e3-8527-828b-5db963cee5ab")
	in := &inboxCalls{ch: event.Change{Updated: 1, Pos: 7}, rows: []*event.Row{{ID: id, Seq: 3, RecipientID: "u1", Data: json.RawMessage(`{}`)}}}
	relay := &frames{}
	do := inboxServer(t, in, relay)
	for _, tc := range []struct {
		method, path string
		want         string // the read frame, or "" for none
	}{
		{"POST", "/notifications/" + id.String() + "/read", `{"topic":"observation/signal/notification/read","room":"signal/notification/u1","data":{"ids":["` + id.String() + `"],"count":1}}`},
		{"POST", "/notifications/read-all", `{"topic":"observation/signal/notification/read","room":"signal/notification/u1","data":{"all":true,"count":1}}`},
		{"POST", "/notifications/" + id.String() + "/archive", ""},
		{"POST", "/notifications/seen", ""},
		{"DELETE", "/notifications/" + id.String(), ""},
		{"POST", "/notifications/delete-all", ""},
	} {
		code, body := do(tc.method, tc.path+"?recipientId=u1")
		if code >= 300 {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, code, body)
		}
		got := relay.take()
		if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
			t.Errorf("%s %s sent %v, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}
