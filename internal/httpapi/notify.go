package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/event"
)

// Notifier creates notifications over REST, as a Kafka record would
// (POST /notifications).
type Notifier interface {
	// Create makes the notifications of message value once per key: the
	// same key again, on any instance, makes none and answers the same
	// ids. A message that would be a dead letter is an *event.InvalidError.
	Create(ctx context.Context, key string, value []byte) ([]uuid.UUID, error)
	// Retract removes every notification made from the producer's event;
	// Update replaces fields of them. Each returns how many it changed (0
	// on a repeat) and reaches every device as changes of the streams.
	Retract(ctx context.Context, eventID string) (int, error)
	Update(ctx context.Context, eventID string, p event.EventPatch) (int, error)
}

// IdempotencyKeyHeader names the key of a POST /notifications.
const IdempotencyKeyHeader = "Idempotency-Key"

func (a *api) notifyRoutes() []Route {
	const notify = auth.ScopeNotify
	return []Route{
		{"POST", "/notifications", "api-key", notify, "create notifications as a Kafka record would (header Idempotency-Key required); 202 {\"ids\":[…]}", a.apiKey(notify, a.createNotifications)},
		{"DELETE", "/events/{eventId}", "api-key", notify, "retract every notification made from the producer's event (idempotent)", a.apiKey(notify, a.retractEvent)},
		{"PATCH", "/events/{eventId}", "api-key", notify, "update content, actionUrl and data of the event's notifications in place (idempotent)", a.apiKey(notify, a.updateEvent)},
	}
}

type created struct {
	IDs []string `json:"ids"`
}

func (a *api) createNotifications(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get(IdempotencyKeyHeader)
	if key == "" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "the Idempotency-Key header is required: the same key never makes a second notification")
		return
	}
	if err := event.ValidateID(IdempotencyKeyHeader, key); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	body, ok := readBodyOrAnswer(w, r)
	if !ok {
		return
	}
	if a.Notifier == nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "this server does not create notifications")
		return
	}
	ids, err := a.Notifier.Create(r.Context(), key, body)
	var inv *event.InvalidError
	switch {
	case errors.As(err, &inv):
		// The reasons of a dead letter, as codes: the message is refused
		// for what a Kafka record would be kept for.
		writeError(w, http.StatusBadRequest, inv.Reason, inv.Error())
		return
	case err != nil:
		a.unavailable(w, r, "create notifications", err)
		return
	}
	out := created{IDs: make([]string, len(ids))}
	for i, id := range ids {
		out.IDs[i] = id.String()
	}
	writeJSON(w, http.StatusAccepted, out)
}

// eventID reads and checks the {eventId} of the path; false: answered.
func (a *api) eventID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("eventId")
	if err := event.ValidateID("eventId", id); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return "", false
	}
	if a.Notifier == nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "this server does not change notifications")
		return "", false
	}
	return id, true
}

func (a *api) retractEvent(w http.ResponseWriter, r *http.Request) {
	id, ok := a.eventID(w, r)
	if !ok {
		return
	}
	n, err := a.Notifier.Retract(r.Context(), id)
	if err != nil {
		a.unavailable(w, r, "retract event", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"removed": n})
}

// eventPatchBody is PATCH /events/{eventId}'s body.
type eventPatchBody struct {
	Content   *string         `json:"content"`
	ActionURL *string         `json:"actionUrl"`
	Data      json.RawMessage `json:"data"`
}

// patchOf checks a PATCH body and makes it a patch; false: answered.
func patchOf(w http.ResponseWriter, b eventPatchBody) (event.EventPatch, bool) {
	p := event.EventPatch{Content: b.Content, ActionURL: b.ActionURL}
	for name, v := range map[string]*string{"content": b.Content, "actionUrl": b.ActionURL} {
		if v != nil && strings.IndexByte(*v, 0) >= 0 {
			writeError(w, http.StatusBadRequest, CodeBadRequest, name+" must not contain the NUL character")
			return p, false
		}
	}
	if len(b.Data) > 0 && string(b.Data) != "null" {
		data, err := event.PatchData(b.Data)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
			return p, false
		}
		p.Data = data
	}
	if p.Empty() {
		writeError(w, http.StatusBadRequest, CodeBadRequest, `nothing to update: give content, actionUrl or data`)
		return p, false
	}
	return p, true
}

func (a *api) updateEvent(w http.ResponseWriter, r *http.Request) {
	id, ok := a.eventID(w, r)
	if !ok {
		return
	}
	var b eventPatchBody
	if !decodeBody(w, r, &b, `{"content"?,"actionUrl"?,"data"?}`) {
		return
	}
	p, ok := patchOf(w, b)
	if !ok {
		return
	}
	n, err := a.Notifier.Update(r.Context(), id, p)
	if err != nil {
		a.unavailable(w, r, "update event", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"updated": n})
}
