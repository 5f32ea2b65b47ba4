package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// CreateNotifications sends POST /notifications: message made into
// notifications once per idempotency key. It returns their ids.
func (c *Client) CreateNotifications(ctx context.Context, key string, message json.RawMessage) ([]string, error) {
	var out struct {
		IDs []string `json:"ids"`
	}
	h := http.Header{}
	h.Set("Idempotency-Key", key)
	err := c.doWith(ctx, http.MethodPost, "/notifications", h, message, &out)
	return out.IDs, err
}

// EventPatch is the body of PATCH /events/{eventId}: the fields given
// replace those of every notification made from the event.
type EventPatch struct {
	Content   *string         `json:"content,omitempty"`
	ActionURL *string         `json:"actionUrl,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// RetractEvent sends DELETE /events/{eventId}: every notification made
// from the event is removed. It returns how many were (0 the second time).
func (c *Client) RetractEvent(ctx context.Context, eventID string) (int, error) {
	var out struct {
		Removed int `json:"removed"`
	}
	err := c.do(ctx, http.MethodDelete, "/events/"+url.PathEscape(eventID), nil, &out)
	return out.Removed, err
}

// UpdateEvent sends PATCH /events/{eventId}. It returns how many
// notifications were updated.
func (c *Client) UpdateEvent(ctx context.Context, eventID string, p EventPatch) (int, error) {
	var out struct {
		Updated int `json:"updated"`
	}
	err := c.do(ctx, http.MethodPatch, "/events/"+url.PathEscape(eventID), p, &out)
	return out.Updated, err
}
