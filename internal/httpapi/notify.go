package httpapi

import (
	"context"
	"errors"
	"net/http"

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
}

// IdempotencyKeyHeader names the key of a POST /notifications.
const IdempotencyKeyHeader = "Idempotency-Key"

func (a *api) notifyRoutes() []Route {
	const notify = auth.ScopeNotify
	return []Route{
		{"POST", "/notifications", "api-key", notify, "create notifications as a Kafka record would (header Idempotency-Key required); 202 {\"ids\":[…]}", a.apiKey(notify, a.createNotifications)},
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
