// Package client is a typed client of Signal's REST API, used by the CLI's
// send, broadcast, clients and status commands.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one serve instance.
type Client struct {
	base   *url.URL
	apiKey string
	http   *http.Client
	// KeyFrom says where the API key came from when the user did not give
	// it (the development state): a 401 then names it.
	KeyFrom string
}

// New returns a client of the server at base (http://host:port).
func New(base, apiKey string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q must look like http://host:port", base)
	}
	return &Client{base: u, apiKey: apiKey, http: &http.Client{Timeout: 15 * time.Second}}, nil
}

// Base is the server URL.
func (c *Client) Base() *url.URL { return c.base }

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("server answered %d", e.Status)
	}
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
}

// IsNotFound reports whether err is a 404 of the API.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// ClientInfo is a connected WebSocket client.
type ClientInfo struct {
	ClientID string `json:"clientId"`
	// ID is ClientID under its older name (servers before clientId).
	ID             string    `json:"id"`
	Subject        string    `json:"subject"`
	Rooms          []string  `json:"rooms"`
	ConnectedSince time.Time `json:"connectedSince"`
	Instance       string    `json:"instance,omitempty"`
}

type sendBody struct {
	Topic string          `json:"topic"`
	Data  json.RawMessage `json:"data"`
}

// Broadcast sends to every connected client.
func (c *Client) Broadcast(ctx context.Context, topic string, data json.RawMessage) error {
	return c.do(ctx, http.MethodPost, "/socket/websocket/clients/broadcast", sendBody{topic, data}, nil)
}

// SendRoom sends to the members of room.
func (c *Client) SendRoom(ctx context.Context, room, topic string, data json.RawMessage) error {
	return c.do(ctx, http.MethodPost, "/socket/websocket/clients/rooms/"+url.PathEscape(room)+"/send", sendBody{topic, data}, nil)
}

// SendClient sends to one client.
func (c *Client) SendClient(ctx context.Context, id, topic string, data json.RawMessage) error {
	return c.do(ctx, http.MethodPost, "/socket/websocket/clients/"+url.PathEscape(id)+"/send", sendBody{topic, data}, nil)
}

// Clients lists the connected clients of every instance.
func (c *Client) Clients(ctx context.Context) ([]ClientInfo, error) {
	var out struct {
		Clients []ClientInfo `json:"clients"`
	}
	err := c.do(ctx, http.MethodGet, "/socket/websocket/clients", nil, &out)
	return out.Clients, err
}

// Status is the answer of GET /status.
type Status struct {
	Instance    string            `json:"instance"`
	Version     string            `json:"version"`
	StartedAt   time.Time         `json:"startedAt"`
	Ready       bool              `json:"ready"`
	Checks      map[string]string `json:"checks"`
	Connections struct {
		Local int `json:"local"`
		Total int `json:"total"`
	} `json:"connections"`
	Consumer struct {
		Topic           string `json:"topic"`
		Group           string `json:"group"`
		PartitionsOwned int    `json:"partitionsOwned"`
		TotalLag        int64  `json:"totalLag"`
		Error           string `json:"error"`
		Lag             []struct {
			Partition int32  `json:"partition"`
			Committed int64  `json:"committed"`
			End       int64  `json:"end"`
			Lag       int64  `json:"lag"`
			Member    string `json:"member"`
			Instance  string `json:"instance"`
		} `json:"lag"`
	} `json:"consumer"`
	DeadLetters struct {
		Pending  int            `json:"pending"`
		ByReason map[string]int `json:"byReason"`
		Oldest   *time.Time     `json:"oldest"`
	} `json:"deadLetters"`
	Instances int              `json:"instances"`
	Cluster   []InstanceStatus `json:"cluster"`
}

// InstanceStatus is one registered instance in Status.
type InstanceStatus struct {
	ID            string    `json:"id"`
	HTTPAddr      string    `json:"httpAddr"`
	StartedAt     time.Time `json:"startedAt"`
	Self          bool      `json:"self"`
	Clients       int       `json:"clients"`
	Partitions    []int32   `json:"partitions"`
	SilentSeconds float64   `json:"silentSeconds"`
	Stale         bool      `json:"stale"`
	Note          string    `json:"note"`
}

// Status reads GET /status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/status", nil, &s)
	return s, err
}

// Readiness is the /readyz answer.
type Readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// Ready reads /readyz (a 503 still returns its body).
func (c *Client) Ready(ctx context.Context) (Readiness, error) {
	var r Readiness
	err := c.do(ctx, http.MethodGet, "/readyz", nil, &r)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable && r.Status != "" {
		return r, nil
	}
	return r, err
}

// Metrics returns the raw Prometheus text of /metrics.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doWith(ctx, method, path, nil, in, out)
}

// doWith is do with more request headers.
func (c *Client) doWith(ctx context.Context, method, path string, header http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	// path is already escaped: keep %2F in room names as it is.
	path, query, _ := strings.Cut(path, "?")
	u := *c.base
	u.RawPath = c.base.Path + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("reach %s: %w (is serve running? set SIGNAL_SERVER)", c.base, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 10<<20))
	if out != nil && len(b) > 0 {
		_ = json.Unmarshal(b, out)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode == http.StatusUnauthorized && c.KeyFrom != "" {
			// A key the user never typed: say where it came from.
			e.Error.Message += " — it was " + c.KeyFrom + ": pass this server's key with --api-key or SIGNAL_API_KEY"
		}
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	return nil
}

// MemberCounts is what a membership change did.
type MemberCounts struct {
	Added   int64 `json:"added"`
	Removed int64 `json:"removed"`
	Members int64 `json:"members"` // replace: the group's size afterwards
}

// Page is one page of a list of ids; NextCursor is nil on the last page.
type Page struct {
	Items      []string `json:"items"`
	NextCursor *string  `json:"nextCursor"`
}

type idsBody struct {
	RecipientIDs []string `json:"recipientIds"`
}

func groupPath(scope, scopeID string) string {
	return "/memberships/" + url.PathEscape(scope) + "/" + url.PathEscape(scopeID)
}

// AddMembers adds recipients to a group.
func (c *Client) AddMembers(ctx context.Context, scope, scopeID string, ids []string) (MemberCounts, error) {
	var out MemberCounts
	err := c.do(ctx, http.MethodPost, groupPath(scope, scopeID)+"/members", idsBody{ids}, &out)
	return out, err
}

// RemoveMembers removes recipients from a group.
func (c *Client) RemoveMembers(ctx context.Context, scope, scopeID string, ids []string) (MemberCounts, error) {
	var out MemberCounts
	err := c.do(ctx, http.MethodPost, groupPath(scope, scopeID)+"/members/remove", idsBody{ids}, &out)
	return out, err
}

// ReplaceMembers makes ids the whole group.
func (c *Client) ReplaceMembers(ctx context.Context, scope, scopeID string, ids []string) (MemberCounts, error) {
	var out MemberCounts
	err := c.do(ctx, http.MethodPut, groupPath(scope, scopeID), idsBody{ids}, &out)
	return out, err
}

// Members reads one page of a group's members (cursor "" for the first).
func (c *Client) Members(ctx context.Context, scope, scopeID, cursor string, limit int) (Page, error) {
	var out Page
	err := c.do(ctx, http.MethodGet, groupPath(scope, scopeID)+pageQuery(cursor, limit), nil, &out)
	return out, err
}

// ScopeIDs reads one page of the ids of a scope's groups that have members.
func (c *Client) ScopeIDs(ctx context.Context, scope, cursor string, limit int) (Page, error) {
	var out Page
	err := c.do(ctx, http.MethodGet, "/memberships/"+url.PathEscape(scope)+pageQuery(cursor, limit), nil, &out)
	return out, err
}

func pageQuery(cursor string, limit int) string {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
