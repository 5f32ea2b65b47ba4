package event

import (
	"encoding/json"
	"time"
)

// TimeLayout is how the payload writes times: RFC 3339, UTC, milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// FormatTime formats t the way every payload does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Notification is the stored row as clients see it (contract section 4).
type Notification struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	OrganizerID *string         `json:"organizerId"`
	Content     string          `json:"content"`
	ActionURL   *string         `json:"actionUrl"`
	Data        json.RawMessage `json:"data"`
	IsRead      bool            `json:"isRead"`
	CreatedAt   string          `json:"createdAt"`
	// ExpiresAt is set when the notification expires (the message's
	// expiresAt); Count and Actors on a grouped item (a groupKey): how many
	// events it collapses and the latest of their actors, newest first.
	ExpiresAt *string `json:"expiresAt,omitempty"`
	Count     int     `json:"count,omitempty"`
	Actors    []Actor `json:"actors,omitempty"`
}

// InboxItem is a stored notification as GET /notifications lists it: the
// payload above (exactly, so a client can treat both alike) and the states
// that only matter in an inbox.
type InboxItem struct {
	Notification
	IsSeen     bool `json:"isSeen"`
	IsArchived bool `json:"isArchived"`
	// Pos is the position of the notification's created change in its
	// recipient's stream (docs/sync-stream.md).
	Pos int64 `json:"pos"`
}

// Frame is every WebSocket message the server sends.
type Frame struct {
	Topic string `json:"topic"`
	Room  string `json:"room,omitempty"`
	// Pos and Counts are set on the changes of a recipient's stream: the
	// change's position, and the recipient's counts right after it (nil:
	// not known here).
	Pos    int64   `json:"pos,omitempty"`
	Counts *Counts `json:"counts,omitempty"`
	Data   any     `json:"data"`
}

// MarshalFrame encodes a frame once; the bytes are then written to every
// receiving connection as they are.
func MarshalFrame(topic, room string, data any) ([]byte, error) {
	return json.Marshal(Frame{Topic: topic, Room: room, Data: data})
}

// MarshalChange encodes the frame of a change at position pos of
// recipient's stream, with the counts after it when known.
func MarshalChange(topic, recipient string, pos int64, counts *Counts, data any) ([]byte, error) {
	return json.Marshal(Frame{Topic: topic, Room: NotificationRoom(recipient), Pos: pos, Counts: counts, Data: data})
}

// StrPtr returns nil for "" and &s otherwise (nullable payload fields).
func StrPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
