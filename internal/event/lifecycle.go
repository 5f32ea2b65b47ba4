package event

import (
	"bytes"
	"encoding/json"
	"time"
)

// The optional fields of a message that shape a notification's life after
// it is created (issue 25): eventId names the producer's event, so that
// its notifications can be retracted or updated (DELETE and PATCH
// /events/{eventId}); expiresAt is when they leave every inbox; groupKey
// collapses one recipient's notifications of a group into one item within
// notifications.group_window. Each is parsed by a small function of its
// own, so that Decode stays one pass over the required fields.

// MaxGroupActors is how many of a group's latest actors an item keeps.
const MaxGroupActors = 3

// withLifecycle validates the optional fields of w into d: d, or the
// first field's error.
func withLifecycle(d *Decoded, w *wire) (*Decoded, error) {
	for _, f := range []func(*Decoded, *wire) error{decodeEventID, decodeExpiresAt, decodeGroupKey} {
		if err := f(d, w); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// lifecycleField is where the fast decoder puts the optional field key
// (nil: not one of them).
func (w *wire) lifecycleField(key string) **string {
	switch key {
	case "eventId":
		return &w.EventID
	case "expiresAt":
		return &w.ExpiresAt
	case "groupKey":
		return &w.GroupKey
	}
	return nil
}

// optionalIdentifier checks an optional field under the identifier rule:
// absent (or null) is fine, present it must be a valid identifier.
func optionalIdentifier(name string, p *string, dst *string) error {
	if p == nil {
		return nil
	}
	if *p == "" {
		return invalid(ReasonInvalidField, "%s must not be empty (leave it out instead)", name)
	}
	if err := checkIdentifier(name, p); err != nil {
		return err
	}
	*dst = *p
	return nil
}

func decodeEventID(d *Decoded, w *wire) error {
	return optionalIdentifier("eventId", w.EventID, &d.EventID)
}

func decodeGroupKey(d *Decoded, w *wire) error {
	return optionalIdentifier("groupKey", w.GroupKey, &d.Grouping)
}

// decodeExpiresAt parses expiresAt, an RFC 3339 time. A time in the past
// is valid here: ingest drops such a message (it is never shown), and the
// REST API refuses it.
func decodeExpiresAt(d *Decoded, w *wire) error {
	if w.ExpiresAt == nil {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, *w.ExpiresAt)
	if err != nil {
		return invalid(ReasonInvalidField, "expiresAt must be an RFC 3339 time, got %q", *w.ExpiresAt)
	}
	d.ExpiresAt, d.Expires = *w.ExpiresAt, t
	return nil
}

// ExpiredAt reports whether the message's notifications have expired at now.
func (d *Decoded) ExpiredAt(now time.Time) bool {
	return !d.Expires.IsZero() && !d.Expires.After(now)
}

// GroupActors is the actors list of a group item: actor first, then the
// earlier ones without it, at most MaxGroupActors.
func GroupActors(actor Actor, earlier []Actor) []Actor {
	out := []Actor{actor}
	for _, a := range earlier {
		if len(out) == MaxGroupActors {
			break
		}
		if a != actor {
			out = append(out, a)
		}
	}
	return out
}

// EventPatch is the body of PATCH /events/{eventId}: what replaces the
// fields of every notification made from the event (nil: unchanged).
type EventPatch struct {
	Content   *string         `json:"content,omitempty"`
	ActionURL *string         `json:"actionUrl,omitempty"` // "": none (null in the payload)
	Data      json.RawMessage `json:"data,omitempty"`      // the stored form (PatchData)
}

// Empty reports whether the patch changes nothing.
func (p EventPatch) Empty() bool { return p.Content == nil && p.ActionURL == nil && p.Data == nil }

// ContentChange is the data of the updated change an edit (PATCH
// /events/{eventId}) or a grouping makes: the items named take the
// members given, as a state change sets states.
type ContentChange struct {
	IDs       []string        `json:"ids"`
	Content   *string         `json:"content,omitempty"`
	ActionURL *string         `json:"actionUrl,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Count     int             `json:"count,omitempty"`
	Actors    []Actor         `json:"actors,omitempty"`
}

// PatchData validates data as a message's data (a JSON object without
// NUL) and returns it in the form notifications store and push it.
func PatchData(raw []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, invalid(ReasonInvalidField, "data must be a JSON object")
	}
	if hasNUL(m) {
		return nil, invalid(ReasonInvalidField, "data must not contain the NUL character (\\u0000)")
	}
	canonical, err := canonicalObject(m)
	if err != nil {
		return nil, err
	}
	return storedObject(m, canonical), nil
}
