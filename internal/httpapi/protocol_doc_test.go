package httpapi_test

import (
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/httpapi"
	"github.com/signal-notify/signal/internal/hub"
)

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var routeHeading = regexp.MustCompile("(?m)^### `(GET|POST|PUT|DELETE|PATCH) ([^`]+)`$")

func TestEveryRouteIsDocumentedAndEveryDocumentedRouteExists(t *testing.T) {
	doc := readDoc(t)
	documented := map[string]bool{}
	for _, m := range routeHeading.FindAllStringSubmatch(doc, -1) {
		documented[m[1]+" "+m[2]] = true
	}
	routes := map[string]bool{}
	for _, r := range httpapi.Routes() {
		key := r.Method + " " + r.Path
		routes[key] = true
		if !documented[key] {
			t.Errorf("route %s has no \"### `%s`\" section in docs/protocol.md", key, key)
		}
	}
	for key := range documented {
		if !routes[key] {
			t.Errorf("docs/protocol.md documents %s, which the router does not have", key)
		}
	}
}

func TestEveryTopicErrorCodeAndCloseCodeIsDocumented(t *testing.T) {
	doc := readDoc(t)
	want := []string{
		event.TopicNotificationCreated, event.TopicNotificationRead, event.TopicNotificationUpdated, event.TopicWelcome, event.TopicJoined,
		event.TopicLeft, event.TopicPong, event.TopicError, event.TopicRefreshed,
		event.TopicSynced, event.TopicReset, event.TopicNotificationRemoved,
		hub.ActionJoin, hub.ActionLeave, hub.ActionPing, hub.ActionRefresh,
		hub.RefusedRate, hub.RefusedSubject, hub.RefusedFull,
		httpapi.CodeBadRequest, httpapi.CodeUnauthorized, httpapi.CodeForbidden, httpapi.CodeNotFound,
		httpapi.CodeTooLarge, httpapi.CodeUnavailable, httpapi.CodeInternal, httpapi.CodeMethodNotAllowed,
	}
	// Every error code the hub can send.
	want = append(want, hub.CodeBadRequest, hub.CodeUnknownAction, hub.CodeInvalidRoom, hub.CodeForbidden,
		hub.CodeTooManyRooms, hub.CodeNotJoined, hub.CodeInvalidSince,
		hub.CodeUnavailable, hub.CodeRateLimited, hub.CodeInvalidToken)
	for _, w := range want {
		if !strings.Contains(doc, "`"+w+"`") && !strings.Contains(doc, `"`+w+`"`) {
			t.Errorf("docs/protocol.md does not mention %q", w)
		}
	}
	for _, code := range []int{hub.CloseGoingAway, hub.ClosePolicy, hub.CloseTooLarge, hub.CloseReconnect, hub.CloseSlowClient, hub.CloseTokenExpired} {
		if !regexp.MustCompile(`(?m)^\| ` + itoa(code) + ` \|`).MatchString(doc) {
			t.Errorf("close code %d is not in the close code table", code)
		}
	}
	if hub.RefusedRate != httpapi.CodeRateLimited || hub.RefusedSubject != httpapi.CodeTooManyConnections || hub.RefusedFull != httpapi.CodeServerFull {
		t.Error("the hub's refusal codes and the REST error codes differ")
	}
	if reflect.TypeOf(hub.Action{}).NumField() != 4 {
		t.Error("the client action has new fields: document them in docs/protocol.md, then update this test")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// Every route an API key may call names the key's scope in its chapter of
// docs/protocol.md (the section, or the chapter's introduction).
func TestEveryAPIKeyRouteDocumentsItsScope(t *testing.T) {
	doc := readDoc(t)
	for _, r := range httpapi.Routes() {
		if r.Scope == "" {
			continue
		}
		heading := "### `" + r.Method + " " + r.Path + "`"
		at := strings.Index(doc, heading)
		if at < 0 {
			continue // TestEveryRouteIsDocumented… says so
		}
		start := strings.LastIndex(doc[:at], "\n## ")
		end := strings.Index(doc[at:], "\n## ")
		if end < 0 {
			end = len(doc) - at
		}
		if !strings.Contains(doc[start:at+end], "scope `"+r.Scope+"`") {
			t.Errorf("%s %s needs the scope %s: its chapter of docs/protocol.md does not say so", r.Method, r.Path, r.Scope)
		}
	}
}
