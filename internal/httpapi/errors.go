package httpapi

import (
	"encoding/json"
	"net/http"
)

// Error codes of REST responses.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeTooLarge         = "payload_too_large"
	CodeUnsupported      = "unsupported_media_type"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeClientClosed     = "client_closed_request" // 499: the client hung up first
	// Refusals of a WebSocket upgrade, with Retry-After: the hub's
	// hub.Refused* (the same strings).
	CodeRateLimited        = "rate_limited"         // 429: websocket.upgrade_rate
	CodeTooManyConnections = "too_many_connections" // 429: websocket.max_connections_per_subject
	CodeServerFull         = "server_full"          // 503: websocket.max_connections
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError answers {"error":{"code":…,"message":…}}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="signal"`)
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
