package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/event"
)

// Inbox limits.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Inbox reads the stored notifications and changes their states.
type Inbox interface {
	ListNotifications(ctx context.Context, recipient string, f event.InboxFilter, limit int, before int64) ([]*event.Row, error)
	// Notification returns event.ErrNotFound unless recipient has id.
	Notification(ctx context.Context, recipient string, id uuid.UUID) (*event.Row, error)
	// Counts returns the counts and the position of the recipient's
	// stream they are at; StreamPos that position alone.
	Counts(ctx context.Context, recipient string) (event.Counts, int64, error)
	StreamPos(ctx context.Context, recipient string) (int64, error)
	// Mark and MarkAll change states; each change that changes something
	// reaches the recipient's devices as a change of its stream.
	Mark(ctx context.Context, recipient string, op event.Op, ids []uuid.UUID) (event.Change, error)
	MarkAll(ctx context.Context, recipient string, op event.Op) (event.Change, error)
}

func (a *api) inboxRoutes() []Route {
	const both = "api-key or jwt"
	return []Route{
		{"GET", "/notifications", both, auth.ScopeInbox, "a recipient's notifications, newest first, cursor-paginated, filtered", a.inbox(a.listNotifications)},
		{"GET", "/notifications/counts", both, auth.ScopeInbox, "unread, unseen and total (neither archived nor deleted)", a.inbox(a.counts)},
		{"GET", "/notifications/unread-count", both, auth.ScopeInbox, "how many notifications are unread (see counts)", a.inbox(a.unreadCount)},
		{"GET", "/notifications/{id}", both, auth.ScopeInbox, "one notification with its states", a.inbox(a.getOne)},
		{"POST", "/notifications/seen", both, auth.ScopeInbox, "mark seen: body {\"ids\":[…]} or {\"all\":true}", a.inbox(a.markMany(event.OpSeen))},
		{"POST", "/notifications/read", both, auth.ScopeInbox, "mark read: body {\"ids\":[…]} or {\"all\":true}", a.inbox(a.markMany(event.OpRead))},
		{"POST", "/notifications/unread", both, auth.ScopeInbox, "mark unread: body {\"ids\":[…]}", a.inbox(a.markMany(event.OpUnread))},
		{"POST", "/notifications/archive", both, auth.ScopeInbox, "archive: body {\"ids\":[…]}", a.inbox(a.markMany(event.OpArchive))},
		{"POST", "/notifications/unarchive", both, auth.ScopeInbox, "unarchive: body {\"ids\":[…]}", a.inbox(a.markMany(event.OpUnarchive))},
		{"POST", "/notifications/delete", both, auth.ScopeInbox, "delete: body {\"ids\":[…]} or {\"all\":true}", a.inbox(a.markMany(event.OpDelete))},
		{"POST", "/notifications/read-all", both, auth.ScopeInbox, "mark every notification of the recipient read", a.inbox(a.markAll(event.OpRead))},
		{"POST", "/notifications/delete-all", both, auth.ScopeInbox, "delete every notification of the recipient", a.inbox(a.markAll(event.OpDelete))},
		{"POST", "/notifications/{id}/read", both, auth.ScopeInbox, "mark one notification read", a.inbox(a.markOne(event.OpRead))},
		{"POST", "/notifications/{id}/unread", both, auth.ScopeInbox, "mark one notification unread", a.inbox(a.markOne(event.OpUnread))},
		{"POST", "/notifications/{id}/archive", both, auth.ScopeInbox, "archive one notification", a.inbox(a.markOne(event.OpArchive))},
		{"POST", "/notifications/{id}/unarchive", both, auth.ScopeInbox, "unarchive one notification", a.inbox(a.markOne(event.OpUnarchive))},
		{"DELETE", "/notifications/{id}", both, auth.ScopeInbox, "delete one notification (gone from the inbox)", a.inbox(a.markOne(event.OpDelete))},
	}
}

type page struct {
	Items      []event.InboxItem `json:"items"`
	NextCursor *string           `json:"nextCursor"`
	// Pos is the recipient's stream position read before the page: the
	// page reflects at least every change up to it (docs/sync-stream.md).
	Pos int64 `json:"pos"`
}

func (a *api) listNotifications(w http.ResponseWriter, r *http.Request, recipient string) {
	q := r.URL.Query()
	limit := DefaultPageSize
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("limit must be a number from 1 to %d", MaxPageSize))
			return
		}
		limit = n
	}
	var f event.InboxFilter
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"unread", &f.Unread}, {"unseen", &f.Unseen}} {
		v, ok := boolParam(w, q.Get(b.name), b.name)
		if !ok {
			return
		}
		*b.dst = v
	}
	archived, ok := boolParam(w, q.Get("archived"), "archived")
	if !ok {
		return
	}
	if archived {
		f.Archived = event.ArchivedOnly
	}
	f.Type, f.OrganizerID = q.Get("type"), q.Get("organizerId")
	for name, v := range map[string]string{"type": f.Type, "organizerId": f.OrganizerID} {
		if v != "" && !validParam(w, name, v) {
			return
		}
	}
	var before int64
	if c := q.Get("cursor"); c != "" {
		if before, ok = decodeCursor(c); !ok {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "cursor is not one this API returned")
			return
		}
	}
	pos, err := a.Inbox.StreamPos(r.Context(), recipient)
	if err != nil {
		a.unavailable(w, r, "cannot read notifications", err)
		return
	}
	rows, err := a.Inbox.ListNotifications(r.Context(), recipient, f, limit+1, before)
	if err != nil {
		a.unavailable(w, r, "cannot read notifications", err)
		return
	}
	p := page{Items: make([]event.InboxItem, 0, limit), Pos: pos}
	for i, row := range rows {
		if i == limit {
			c := encodeCursor(rows[i-1].Seq)
			p.NextCursor = &c
			break
		}
		p.Items = append(p.Items, row.Item())
	}
	writeJSON(w, http.StatusOK, p)
}

// boolParam reads an optional true/false query parameter.
func boolParam(w http.ResponseWriter, v, name string) (bool, bool) {
	switch v {
	case "", "false", "0":
		return false, true
	case "true", "1":
		return true, true
	}
	writeError(w, http.StatusBadRequest, CodeBadRequest, name+" must be true or false")
	return false, false
}

// validParam refuses an identifier-like query value before it reaches the
// database.
// TODO(lead): use event.ValidateID (the edge branch adds it) once merged.
func validParam(w http.ResponseWriter, name, v string) bool {
	switch {
	case len(v) > event.MaxIDBytes:
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("%s is longer than %d bytes", name, event.MaxIDBytes))
	case !utf8.ValidString(v):
		writeError(w, http.StatusBadRequest, CodeBadRequest, name+" must be valid UTF-8")
	case bytes.ContainsFunc([]byte(v), func(r rune) bool { return r < 0x20 || r == 0x7f }):
		writeError(w, http.StatusBadRequest, CodeBadRequest, name+" must not contain control characters")
	default:
		return true
	}
	return false
}

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s" + strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 2 || b[0] != 's' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b[1:]), 10, 64)
	return n, err == nil && n > 0
}

// countsAt are the counts with the stream position they are at.
type countsAt struct {
	event.Counts
	Pos int64 `json:"pos"`
}

func (a *api) counts(w http.ResponseWriter, r *http.Request, recipient string) {
	c, pos, err := a.Inbox.Counts(r.Context(), recipient)
	if err != nil {
		a.unavailable(w, r, "cannot count notifications", err)
		return
	}
	writeJSON(w, http.StatusOK, countsAt{c, pos})
}

func (a *api) unreadCount(w http.ResponseWriter, r *http.Request, recipient string) {
	c, _, err := a.Inbox.Counts(r.Context(), recipient)
	if err != nil {
		a.unavailable(w, r, "cannot count notifications", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"unread": c.Unread})
}

// pathID reads the {id} of the path.
func pathID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "the notification id must be a UUID")
		return id, false
	}
	return id, true
}

func (a *api) getOne(w http.ResponseWriter, r *http.Request, recipient string) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	row, err := a.Inbox.Notification(r.Context(), recipient, id)
	if errors.Is(err, event.ErrNotFound) || err == nil && row.IsDeleted {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such notification for this recipient")
		return
	}
	if err != nil {
		a.unavailable(w, r, "cannot read the notification", err)
		return
	}
	writeJSON(w, http.StatusOK, row.Item())
}

// markOne changes one notification and answers it as it now is (DELETE:
// 204, no body).
func (a *api) markOne(op event.Op) inboxHandler {
	return func(w http.ResponseWriter, r *http.Request, recipient string) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		ch, err := a.Inbox.Mark(r.Context(), recipient, op, []uuid.UUID{id})
		if err != nil {
			a.unavailable(w, r, "cannot change the notification", err)
			return
		}
		if len(ch.Found) == 0 {
			writeError(w, http.StatusNotFound, CodeNotFound, "no such notification for this recipient")
			return
		}
		a.pushChange(r.Context(), recipient, ch)
		if op == event.OpDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		row, err := a.Inbox.Notification(r.Context(), recipient, id)
		if err != nil {
			a.unavailable(w, r, "cannot read the notification", err)
			return
		}
		writeJSON(w, http.StatusOK, row.Item())
	}
}

// markBody is the body of the many-ids routes.
type markBody struct {
	IDs []string `json:"ids"`
	All bool     `json:"all"`
}

// markMany changes the notifications a body names, or all of them.
func (a *api) markMany(op event.Op) inboxHandler {
	return func(w http.ResponseWriter, r *http.Request, recipient string) {
		var b markBody
		if !decodeBody(w, r, &b, `{"ids":[…]} or {"all":true}`) {
			return
		}
		switch {
		case b.All && len(b.IDs) > 0:
			writeError(w, http.StatusBadRequest, CodeBadRequest, "give ids or all, not both")
			return
		case b.All:
			a.markAll(op)(w, r, recipient)
			return
		case len(b.IDs) == 0:
			writeError(w, http.StatusBadRequest, CodeBadRequest, `ids is required (or "all":true)`)
			return
		case len(b.IDs) > event.MaxChangeIDs:
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("at most %d ids at once", event.MaxChangeIDs))
			return
		}
		ids := make([]uuid.UUID, len(b.IDs))
		for i, s := range b.IDs {
			id, err := uuid.Parse(s)
			if err != nil {
				writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("ids[%d] is not a UUID", i))
				return
			}
			ids[i] = id
		}
		ch, err := a.Inbox.Mark(r.Context(), recipient, op, ids)
		if err != nil {
			a.unavailable(w, r, "cannot change the notifications", err)
			return
		}
		a.pushChange(r.Context(), recipient, ch)
		writeJSON(w, http.StatusOK, map[string]int64{"updated": ch.Updated})
	}
}

// markAll changes every notification of the recipient.
func (a *api) markAll(op event.Op) inboxHandler {
	return func(w http.ResponseWriter, r *http.Request, recipient string) {
		if !op.AppliesToAll() {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf(`"all" does not apply to %s: give ids`, op))
			return
		}
		ch, err := a.Inbox.MarkAll(r.Context(), recipient, op)
		if err != nil {
			a.unavailable(w, r, "cannot change the notifications", err)
			return
		}
		a.pushChange(r.Context(), recipient, ch)
		writeJSON(w, http.StatusOK, map[string]int64{"updated": ch.Updated})
	}
}

// decodeBody reads one JSON object with no unknown fields; shape names it
// in the error.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	body, ok := readBodyOrAnswer(w, r)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		msg := "the body must be one JSON object " + shape
		if err != nil {
			msg += ": " + err.Error()
		}
		writeError(w, http.StatusBadRequest, CodeBadRequest, msg)
		return false
	}
	return true
}

// pushChange sends, after a read route's change, the read frame those
// routes always sent (deprecated: the updated frame, a change of the
// recipient's stream, reached every device with the change itself).
func (a *api) pushChange(ctx context.Context, recipient string, ch event.Change) {
	if ch.Updated == 0 || ch.Op != event.OpRead {
		return
	}
	room := event.NotificationRoom(recipient)
	legacy := readFrame{All: ch.All, Count: ch.Updated}
	if !ch.All {
		legacy.IDs = ch.Frame().IDs
	}
	frame, _ := event.MarshalFrame(event.TopicNotificationRead, room, legacy)
	if err := a.Relay.SendRoom(ctx, room, frame); err != nil {
		a.Logger.Warn("read state not pushed to other instances", "err", err)
	}
}

// readFrame is the data of the read frame (deprecated: updated says more).
type readFrame struct {
	IDs   []string `json:"ids,omitempty"`
	All   bool     `json:"all,omitempty"`
	Count int64    `json:"count"`
}
