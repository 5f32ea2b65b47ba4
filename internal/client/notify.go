package client

import (
	"context"
	"encoding/json"
	"net/http"
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
