package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/hub"
	"github.com/signal-notify/signal/internal/store"
)

// MaxBody is the largest request body the REST API reads.
const MaxBody = 1 << 20

// MaxTopicBytes bounds the topic of a send.
const MaxTopicBytes = 256

// Relay delivers frames to clients on every instance.
type Relay interface {
	SendRoom(ctx context.Context, room string, frame []byte) error
	Broadcast(ctx context.Context, frame []byte) error
	// SendClient returns event.ErrNotFound when no instance has the client.
	SendClient(ctx context.Context, clientID string, frame []byte) error
	Clients(ctx context.Context) ([]hub.ClientInfo, error)
}

// Route is one endpoint of the API (also the source of docs checks).
type Route struct {
	Method string
	Path   string
	Auth   string // "none", "api-key", "jwt", "api-key or jwt"
	// Scope is what an API key needs for this route (auth.Scope*; admin
	// has every one); "" when no API key is accepted.
	Scope   string
	Summary string
	handler http.HandlerFunc
}

func (a *api) routeTable() []Route {
	const (
		send, inbox, members, status = auth.ScopeSend, auth.ScopeInbox, auth.ScopeMembers, auth.ScopeStatus
	)
	return append([]Route{
		{"GET", "/healthz", "none", "", "liveness", a.healthz},
		{"GET", "/readyz", "none", "", "readiness: database, Kafka, relay; 503 while draining", a.readyz},
		{"GET", "/metrics", "none", "", "Prometheus metrics", nil},
		{"GET", "/console", "none", "", "web console (redirects to /console/)", a.consoleRedirect},
		{"GET", "/status", "api-key", status, "one-screen summary: readiness, clients, consumer lag, dead letters", a.apiKey(status, a.status)},
		{"GET", "/socket/websocket", "jwt", "", "WebSocket endpoint", a.websocket},
		{"POST", "/socket/websocket/clients/broadcast", "api-key", send, "send a frame to every client on every instance", a.apiKey(send, a.broadcast)},
		{"POST", "/socket/websocket/clients/rooms/{roomName}/send", "api-key", send, "send a frame to every member of a room", a.apiKey(send, a.sendRoom)},
		{"POST", "/socket/websocket/clients/{clientId}/send", "api-key", send, "send a frame to one client, wherever it is connected", a.apiKey(send, a.sendClient)},
		{"GET", "/socket/websocket/clients", "api-key", status, "list connected clients of every instance, oldest first (paged with limit and cursor)", a.apiKey(status, a.listClients)},
		{"GET", "/preferences", "api-key or jwt", inbox, "what the recipient mutes", a.inbox(a.getPreferences)},
		{"PUT", "/preferences", "api-key or jwt", inbox, "replace what the recipient mutes (types, organizers, merchants)", a.inbox(a.putPreferences)},
		{"GET", "/memberships/{scope}", "api-key", members, "the ids of the scope's groups that have members, cursor-paginated", a.apiKey(members, a.listScopeIDs)},
		{"PUT", "/memberships/{scope}/{scopeId}", "api-key", members, "replace a group's members (read whole, then applied; idempotent)", a.apiKey(members, a.replaceMembers)},
		{"GET", "/memberships/{scope}/{scopeId}", "api-key", members, "a group's members, cursor-paginated", a.apiKey(members, a.listMembers)},
		{"POST", "/memberships/{scope}/{scopeId}/members", "api-key", members, "add members to a group", a.apiKey(members, a.addMembers)},
		{"POST", "/memberships/{scope}/{scopeId}/members/remove", "api-key", members, "remove members from a group", a.apiKey(members, a.removeMembers)},
		{"DELETE", "/memberships/{scope}/{scopeId}/members/{recipientId}", "api-key", members, "remove one member from a group", a.apiKey(members, a.removeMember)},
	}, append(a.inboxRoutes(), a.notifyRoutes()...)...)
}

// Routes lists the API's endpoints (for documentation and its tests).
func Routes() []Route { return (&api{}).routeTable() }

// --- authentication ---

// apiKey admits a request with an API key that has scope.
func (a *api) apiKey(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := auth.BearerToken(r)
		if key == "" {
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "an API key is required: Authorization: Bearer <key>")
			return
		}
		scopes, ok := a.APIKeys.Lookup(key)
		if !ok {
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "the API key is not valid")
			return
		}
		if !scopes.Allows(scope) {
			writeForbiddenScope(w, scope)
			return
		}
		h(w, r)
	}
}

// forbiddenScope is the answer to a valid API key without the route's
// scope (contract section 9): {"error":"forbidden","scope":"…"}.
type forbiddenScope struct {
	Error string `json:"error"`
	Scope string `json:"scope"`
}

func writeForbiddenScope(w http.ResponseWriter, scope string) {
	writeJSON(w, http.StatusForbidden, forbiddenScope{Error: CodeForbidden, Scope: scope})
}

type inboxHandler func(w http.ResponseWriter, r *http.Request, recipient string)

// inbox authenticates an API key (recipientId required) or a JWT
// (recipientId defaults to its sub; another value is 403).
func (a *api) inbox(h inboxHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "the query string is malformed: "+err.Error())
			return
		}
		cred := auth.BearerToken(r)
		param := r.URL.Query().Get("recipientId")
		if cred == "" {
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "an API key or a token is required: Authorization: Bearer <credential>")
			return
		}
		if scopes, ok := a.APIKeys.Lookup(cred); ok {
			if !scopes.Allows(auth.ScopeInbox) {
				writeForbiddenScope(w, auth.ScopeInbox)
				return
			}
			if param == "" {
				writeError(w, http.StatusBadRequest, CodeBadRequest, "recipientId is required with an API key")
				return
			}
			if !validID(w, "recipientId", param) {
				return
			}
			h(w, r, param)
			return
		}
		claims, err := a.Verifier.Verify(cred)
		if err != nil {
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, err.Error())
			return
		}
		if param != "" && !validID(w, "recipientId", param) {
			return
		}
		if param != "" && param != claims.Subject {
			writeError(w, http.StatusForbidden, CodeForbidden, "this token may only read its own notifications")
			return
		}
		h(w, r, claims.Subject)
	}
}

// validID answers 400 when id breaks the identifier rule, before it can
// reach the database (which would fail in a way that looks like an outage).
func validID(w http.ResponseWriter, what, id string) bool {
	if err := event.ValidateID(what, id); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, strings.TrimPrefix(err.Error(), event.ErrInvalidID.Error()+": "))
		return false
	}
	return true
}

// --- sends ---

type sendBody struct {
	Topic string          `json:"topic"`
	Data  json.RawMessage `json:"data"`
}

// readSend decodes and checks a send body; it has answered the request
// when it returns false.
func readSend(w http.ResponseWriter, r *http.Request) (sendBody, bool) {
	var b sendBody
	if !decodeJSON(w, r, &b) {
		return b, false
	}
	switch {
	case b.Topic == "":
		writeError(w, http.StatusBadRequest, CodeBadRequest, "topic is required")
		return b, false
	case len(b.Topic) > MaxTopicBytes:
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("topic is longer than %d bytes", MaxTopicBytes))
		return b, false
	case strings.IndexFunc(b.Topic, unicode.IsControl) >= 0:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "topic must not contain control characters")
		return b, false
	}
	if len(b.Data) == 0 {
		b.Data = json.RawMessage("null")
	}
	return b, true
}

// readBodyOrAnswer reads the body (at most MaxBody bytes), or answers 413
// or 400 and returns false.
func readBodyOrAnswer(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := readBody(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxBody))
		} else {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "cannot read the body: "+err.Error())
		}
		return nil, false
	}
	return body, true
}

// decodeJSON reads one JSON object with no unknown fields from a body of at
// most MaxBody bytes.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := readBodyOrAnswer(w, r)
	if !ok {
		return false
	}
	// encoding/json passes invalid UTF-8 through into raw values: it would
	// reach clients inside text frames, which browsers close the connection
	// on.
	if !utf8.Valid(body) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("the body must be valid UTF-8 (invalid byte at offset %d)", invalidUTF8At(body)))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "the body must be a JSON object {\"topic\":…,\"data\":…}: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "the body must hold one JSON object")
		return false
	}
	return true
}

// invalidUTF8At is the offset of the first byte that is not valid UTF-8.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBody))
	return buf.Bytes(), err
}

type sent struct {
	Status string `json:"status"`
	Topic  string `json:"topic"`
	Room   string `json:"room,omitempty"`
	Client string `json:"clientId,omitempty"`
}

func (a *api) broadcast(w http.ResponseWriter, r *http.Request) {
	b, ok := readSend(w, r)
	if !ok {
		return
	}
	frame, _ := event.MarshalFrame(b.Topic, "", b.Data)
	if err := a.Relay.Broadcast(r.Context(), frame); err != nil {
		a.unavailable(w, r, "broadcast reached this instance's clients only", err)
		return
	}
	writeJSON(w, http.StatusOK, sent{Status: "sent", Topic: b.Topic})
}

func (a *api) sendRoom(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("roomName")
	if err := hub.ValidateRoom(room); err != nil {
		writeError(w, http.StatusBadRequest, hub.CodeInvalidRoom, err.Message)
		return
	}
	b, ok := readSend(w, r)
	if !ok {
		return
	}
	frame, _ := event.MarshalFrame(b.Topic, room, b.Data)
	if err := a.Relay.SendRoom(r.Context(), room, frame); err != nil {
		a.unavailable(w, r, "sent to this instance's members of the room only", err)
		return
	}
	writeJSON(w, http.StatusOK, sent{Status: "sent", Topic: b.Topic, Room: room})
}

func (a *api) sendClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("clientId")
	if !validID(w, "clientId", id) {
		return
	}
	b, ok := readSend(w, r)
	if !ok {
		return
	}
	frame, _ := event.MarshalFrame(b.Topic, "", b.Data)
	err := a.Relay.SendClient(r.Context(), id, frame)
	switch {
	case errors.Is(err, event.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no client %q is connected", id))
	case err != nil:
		a.unavailable(w, r, "cannot reach the other instances", err)
	default:
		writeJSON(w, http.StatusOK, sent{Status: "sent", Topic: b.Topic, Client: id})
	}
}

// clientPage is GET /socket/websocket/clients: every client, or a page of
// them with ?limit= (the console pages through them).
type clientPage struct {
	Clients    []hub.ClientInfo `json:"clients"`
	Total      int              `json:"total"`
	NextCursor *string          `json:"nextCursor"`
}

func (a *api) listClients(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxClientPage {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("limit must be a number from 1 to %d", MaxClientPage))
			return
		}
		limit = n
	}
	var after clientKey
	if c := q.Get("cursor"); c != "" {
		var ok bool
		if after, ok = decodeClientCursor(c); !ok {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "cursor is not one this API returned")
			return
		}
	}
	list, err := a.Relay.Clients(r.Context())
	if err != nil {
		a.unavailable(w, r, "cannot list the clients", err)
		return
	}
	// Oldest first; the cursor is the last client of the page, so clients
	// that connect or leave meanwhile shift no other one across pages.
	sort.Slice(list, func(i, j int) bool { return keyOf(list[i]).less(keyOf(list[j])) })
	p := clientPage{Clients: list, Total: len(list)}
	if after.id != "" {
		i := sort.Search(len(list), func(i int) bool { return after.less(keyOf(list[i])) })
		p.Clients = list[i:]
	}
	if limit > 0 && len(p.Clients) > limit {
		p.Clients = p.Clients[:limit]
		c := encodeClientCursor(keyOf(p.Clients[limit-1]))
		p.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, clientPageView{Clients: clientViews(p.Clients), Total: p.Total, NextCursor: p.NextCursor})
}

// clientView is a client as the API lists it: clientId as in the welcome
// frame (id, its older name, kept for scripts), times in milliseconds as
// every time of the API.
type clientView struct {
	ClientID       string   `json:"clientId"`
	ID             string   `json:"id"` // deprecated: clientId
	Subject        string   `json:"subject"`
	Rooms          []string `json:"rooms"`
	ConnectedSince string   `json:"connectedSince"`
	Instance       string   `json:"instance,omitempty"`
}

type clientPageView struct {
	Clients    []clientView `json:"clients"`
	Total      int          `json:"total"`
	NextCursor *string      `json:"nextCursor"`
}

func clientViews(list []hub.ClientInfo) []clientView {
	out := make([]clientView, len(list))
	for i, c := range list {
		out[i] = clientView{ClientID: c.ID, ID: c.ID, Subject: c.Subject, Rooms: c.Rooms,
			ConnectedSince: event.FormatTime(c.ConnectedSince), Instance: c.Instance}
	}
	return out
}

// MaxClientPage is the largest ?limit= of the client list.
const MaxClientPage = 1000

type clientKey struct {
	since time.Time
	id    string
}

func keyOf(c hub.ClientInfo) clientKey { return clientKey{c.ConnectedSince, c.ID} }

func (k clientKey) less(o clientKey) bool {
	if !k.since.Equal(o.since) {
		return k.since.Before(o.since)
	}
	return k.id < o.id
}

func encodeClientCursor(k clientKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte("c" + strconv.FormatInt(k.since.UnixNano(), 10) + " " + k.id))
}

func decodeClientCursor(c string) (clientKey, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 2 || b[0] != 'c' {
		return clientKey{}, false
	}
	ns, id, ok := strings.Cut(string(b[1:]), " ")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return clientKey{}, false
	}
	return clientKey{time.Unix(0, n), id}, true
}

// StatusClientClosedRequest is what a request whose client hung up before
// its answer is counted as (nginx's 499): not a failure of the server.
const StatusClientClosedRequest = 499

// unavailable answers a failure of the database or the relay: 503, logged
// as a warning. Two failures are not the server's, and are not counted or
// logged as one: the client hung up (its request's context ended: 499,
// logged at debug, and nobody reads the answer), and a value the database
// refuses as data (SQLSTATE class 22) that validation let through (400).
func (a *api) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case r.Context().Err() != nil:
		a.Logger.Debug(what+": the client went away", "err", err)
		writeError(w, StatusClientClosedRequest, CodeClientClosed, what+": the client closed the request")
	case store.IsDataError(err):
		a.Logger.Info(what+": the database refused a value of the request", "err", err)
		writeError(w, http.StatusBadRequest, CodeBadRequest, what+": the request holds a value that cannot be stored")
	default:
		a.Logger.Warn(what, "err", err)
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, what+": the database is unavailable")
	}
}

func (a *api) consoleRedirect(w http.ResponseWriter, r *http.Request) {
	if a.Console == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "this server has no console")
		return
	}
	http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
}
