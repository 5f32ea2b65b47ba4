package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/signal-notify/signal/internal/event"
)

// Error codes of signal/system/error frames.
const (
	CodeBadRequest    = "bad_request"
	CodeUnknownAction = "unknown_action"
	CodeInvalidRoom   = "invalid_room"
	CodeForbidden     = "forbidden"
	CodeTooManyRooms  = "too_many_rooms"
	CodeNotJoined     = "not_joined"
	CodeInvalidSince  = "invalid_since"
	CodeUnavailable   = "unavailable"
	CodeRateLimited   = "rate_limited"
	CodeInvalidToken  = "invalid_token"
)

// Actions a client may send.
const (
	ActionJoin    = "join"
	ActionLeave   = "leave"
	ActionPing    = "ping"
	ActionRefresh = "refresh"
)

// MaxRoomBytes bounds a room name.
const MaxRoomBytes = event.MaxRoomBytes

// Action is one client-to-server message.
type Action struct {
	Action string `json:"action"`
	Room   string `json:"room,omitempty"`
	Since  Since  `json:"since,omitempty"`
	Token  string `json:"token,omitempty"`
}

// Since is a join's resume point: a position (a JSON number, or a string
// of digits) or a notification id, kept as text.
type Since string

// UnmarshalJSON takes a string, or a non-negative integer (a position).
func (s *Since) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = Since(v)
		return nil
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return fmt.Errorf("since must be a position (a whole number) or a notification id, got %s", truncate(string(b), 32))
		}
	}
	if len(b) == 0 || len(b) > 19 {
		return fmt.Errorf("since must be a position (a whole number) or a notification id, got %s", truncate(string(b), 32))
	}
	*s = Since(b)
	return nil
}

// ActionError is a refused action: the client gets it as an error frame
// and stays connected.
type ActionError struct {
	Code    string
	Message string
	Room    string
}

func (e *ActionError) Error() string { return e.Code + ": " + e.Message }

// maxErrorMessage bounds the message of an error frame: whatever the
// input, an error frame echoes at most a short excerpt of it.
const maxErrorMessage = 200

func actionErr(code, room, format string, args ...any) *ActionError {
	return &ActionError{Code: code, Room: room, Message: truncate(fmt.Sprintf(format, args...), maxErrorMessage)}
}

// DecodeAction parses and checks one inbound frame.
func DecodeAction(b []byte) (Action, error) {
	var a Action
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return a, actionErr(CodeBadRequest, "", "frame must be a JSON object like {\"action\":\"join\",\"room\":\"…\"}: %v", err)
	}
	if dec.More() {
		return a, actionErr(CodeBadRequest, "", "frame must hold one JSON object")
	}
	switch a.Action {
	case ActionJoin, ActionLeave:
		if err := ValidateRoom(a.Room); err != nil {
			return a, err
		}
		if a.Action == ActionLeave && a.Since != "" {
			return a, actionErr(CodeBadRequest, a.Room, "since is only for join")
		}
		if a.Token != "" {
			return a, actionErr(CodeBadRequest, a.Room, "token is only for refresh")
		}
	case ActionPing:
		if a.Room != "" || a.Since != "" || a.Token != "" {
			return a, actionErr(CodeBadRequest, "", "ping takes no room, since or token")
		}
	case ActionRefresh:
		if a.Room != "" || a.Since != "" {
			return a, actionErr(CodeBadRequest, "", "refresh takes only a token")
		}
		if a.Token == "" {
			return a, actionErr(CodeInvalidToken, "", "refresh needs a token")
		}
	case "":
		return a, actionErr(CodeBadRequest, "", "action is required: join, leave, ping or refresh")
	default:
		return a, actionErr(CodeUnknownAction, "", "unknown action %q: use join, leave, ping or refresh", truncate(a.Action, 64))
	}
	return a, nil
}

// ValidateRoom checks a room name with the identifier rule of
// event.ValidateRoom, as an error frame.
func ValidateRoom(room string) *ActionError {
	if err := event.ValidateRoom(room); err != nil {
		return actionErr(CodeInvalidRoom, "", "%s", strings.TrimPrefix(err.Error(), event.ErrInvalidID.Error()+": "))
	}
	return nil
}

// truncate cuts s to at most n bytes, on a character boundary, marking
// the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1] // a character cut in two
	}
	return s + "…"
}

// errorData is the data of a signal/system/error frame.
type errorData struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Room    string `json:"room,omitempty"`
}

type roomData struct {
	Room     string `json:"room"`
	Replayed *int   `json:"replayed,omitempty"`
}

type refreshedData struct {
	ExpiresAt *time.Time `json:"expiresAt"` // null: the token has no exp
}

type welcomeData struct {
	ClientID string   `json:"clientId"`
	Rooms    []string `json:"rooms"`
}
