package event

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Row is one stored notification: one recipient's copy of one event.
type Row struct {
	ID uuid.UUID
	// Seq is the row's position in its recipient's stream (the position of
	// its created change), set by the store when it is inserted.
	Seq         int64
	RecipientID string
	Type        string
	OrganizerID string
	MerchantID  string
	ActorID     string
	Actor       Actor
	Content     string
	ActionURL   string
	Data        json.RawMessage
	OccurredAt  time.Time
	EventKey    []byte
	Source      Source
	// The lifecycle fields (lifecycle.go): the producer's event id, when it
	// expires (zero: never), its group, and for a grouped row how many
	// events it collapses (GroupCount) and their latest actors.
	EventID    string
	ExpiresAt  time.Time
	GroupKey   string
	GroupCount int
	Actors     []Actor
	// States, as the store computes them from the row, its recipient's
	// watermarks and its explicit marks (store/inbox.go).
	IsRead     bool
	IsSeen     bool
	IsArchived bool
	IsDeleted  bool
	CreatedAt  time.Time // set by the store
	// Counts are the recipient's counts right after this row was created,
	// when the store knows them (a fresh insert); nil otherwise.
	Counts *Counts
}

// Room is the room this row is pushed to.
func (r *Row) Room() string { return NotificationRoom(r.RecipientID) }

// Payload is the row as clients see it.
func (r *Row) Payload() Notification {
	return Notification{
		ID:          r.ID.String(),
		Type:        r.Type,
		OrganizerID: StrPtr(r.OrganizerID),
		Content:     r.Content,
		ActionURL:   StrPtr(r.ActionURL),
		Data:        r.Data,
		IsRead:      r.IsRead,
		CreatedAt:   FormatTime(r.CreatedAt),
		ExpiresAt:   r.expiresAt(),
		Count:       r.count(),
		Actors:      r.groupActors(),
	}
}

func (r *Row) expiresAt() *string {
	if r.ExpiresAt.IsZero() {
		return nil
	}
	s := FormatTime(r.ExpiresAt)
	return &s
}

// count is the group's size on a grouped row (0 otherwise: not shown).
func (r *Row) count() int {
	if r.GroupKey == "" {
		return 0
	}
	return max(r.GroupCount, 1)
}

// groupActors are a grouped row's latest actors (its own actor when none
// were stored).
func (r *Row) groupActors() []Actor {
	if r.GroupKey == "" {
		return nil
	}
	if len(r.Actors) == 0 {
		return []Actor{r.Actor}
	}
	return r.Actors
}

// Item is the row as the inbox lists it: the payload and the states only
// the inbox shows.
func (r *Row) Item() InboxItem {
	return InboxItem{Notification: r.Payload(), IsSeen: r.IsSeen, IsArchived: r.IsArchived, Pos: r.Seq}
}

// DeadLetter is a record that could not become notifications, kept whole.
type DeadLetter struct {
	ID        int64     `json:"id"`
	Source    Source    `json:"-"`
	Key       []byte    `json:"key"`
	Value     []byte    `json:"value"`
	Headers   []Header  `json:"headers"`
	Reason    string    `json:"reason"`
	Detail    string    `json:"detail"`
	CreatedAt time.Time `json:"createdAt"`
	// ReplayedAt is set once a replay turned it into notifications.
	ReplayedAt *time.Time `json:"replayedAt"`
}

// ErrNotFound is returned when a named notification, client or record does
// not exist (for the one asking).
var ErrNotFound = errors.New("not found")
