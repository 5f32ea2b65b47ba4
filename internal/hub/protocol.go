package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/signal-notify/signal/internal/event"
)

// Error codes of signal/system/error frames.
const (
	CodeBadRequest      = "bad_request"
	CodeUnknownAction   = "unknown_action"
	CodeInvalidRoom     = "invalid_room"
	CodeForbidden       = "forbidden"
	CodeTooManyRooms    = "too_many_rooms"
	CodeNotJoined       = "not_joined"
	CodeInvalidSince    = "invalid_since"
	CodeUnknownSince    = "unknown_since"
	CodeReplayTruncated = "replay_truncated"
	CodeUnavailable     = "unavailable"
)

// Actions a client may send.
const (
	ActionJoin  = "join"
	ActionLeave = "leave"
	ActionPing  = "ping"
)

// MaxRoomBytes bounds a room name.
const MaxRoomBytes = event.MaxRoomBytes

// Action is one client-to-server message.
type Action struct {
	Action string `json:"action"`
	Room   string `json:"room,omitempty"`
	Since  string `json:"since,omitempty"`
}

// ActionError is a refused action: the client gets it as an error frame
// and stays connected.
type ActionError struct {
	Code    string
	Message string
	Room    string
}

func (e *ActionError) Error() string { return e.Code + ": " + e.Message }

func actionErr(code, room, format string, args ...any) *ActionError {
	return &ActionError{Code: code, Room: room, Message: fmt.Sprintf(format, args...)}
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
	case ActionPing:
		if a.Room != "" || a.Since != "" {
			return a, actionErr(CodeBadRequest, "", "ping takes no room or since")
		}
	case "":
		return a, actionErr(CodeBadRequest, "", "action is required: join, leave or ping")
	default:
		return a, actionErr(CodeUnknownAction, "", "unknown action %q: use join, leave or ping", truncate(a.Action, 64))
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
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

type welcomeData struct {
	ClientID string   `json:"clientId"`
	Rooms    []string `json:"rooms"`
}
