package event

import (
	"fmt"

	"github.com/google/uuid"
)

// Op is a change of the states of stored notifications.
type Op string

// The state changes.
const (
	OpRead      Op = "read"
	OpUnread    Op = "unread"
	OpSeen      Op = "seen"
	OpArchive   Op = "archive"
	OpUnarchive Op = "unarchive"
	OpDelete    Op = "delete"
)

// Ops lists every state change.
var Ops = []Op{OpRead, OpUnread, OpSeen, OpArchive, OpUnarchive, OpDelete}

// ParseOp returns the op named s.
func ParseOp(s string) (Op, error) {
	for _, op := range Ops {
		if string(op) == s {
			return op, nil
		}
	}
	return "", fmt.Errorf("unknown state change %q (want read, unread, seen, archive, unarchive or delete)", s)
}

// AppliesToAll reports whether op may apply to every notification at once
// (read-all, seen all, delete-all).
func (op Op) AppliesToAll() bool { return op == OpRead || op == OpSeen || op == OpDelete }

// States are the states of one stored notification. A read notification
// is always seen.
type States struct{ Read, Seen, Archived, Deleted bool }

// Apply returns st after op. Reading marks seen; so does marking unread
// (one marks unread what one has seen).
func (op Op) Apply(st States) States {
	switch op {
	case OpRead:
		st.Read, st.Seen = true, true
	case OpUnread:
		st.Read, st.Seen = false, true
	case OpSeen:
		st.Seen = true
	case OpArchive:
		st.Archived = true
	case OpUnarchive:
		st.Archived = false
	case OpDelete:
		st.Deleted = true
	}
	return st
}

// Sets returns the value op gives each state, nil for the states it leaves
// alone.
func (op Op) Sets() (read, seen, archived, deleted *bool) {
	t, f := true, false
	switch op {
	case OpRead:
		return &t, &t, nil, nil
	case OpUnread:
		return &f, &t, nil, nil
	case OpSeen:
		return nil, &t, nil, nil
	case OpArchive:
		return nil, nil, &t, nil
	case OpUnarchive:
		return nil, nil, &f, nil
	case OpDelete:
		return nil, nil, nil, &t
	}
	return nil, nil, nil, nil
}

// Counts are a recipient's badge figures, over the notifications that are
// neither archived nor deleted.
type Counts struct {
	Unread int64 `json:"unread"`
	Unseen int64 `json:"unseen"`
	Total  int64 `json:"total"`
}

// CountOf is one notification's share of the counts.
func CountOf(st States) Counts {
	if st.Archived || st.Deleted {
		return Counts{}
	}
	c := Counts{Total: 1}
	if !st.Read {
		c.Unread = 1
	}
	if !st.Seen {
		c.Unseen = 1
	}
	return c
}

// Add returns c + o.
func (c Counts) Add(o Counts) Counts {
	return Counts{c.Unread + o.Unread, c.Unseen + o.Unseen, c.Total + o.Total}
}

// Sub returns c − o.
func (c Counts) Sub(o Counts) Counts {
	return Counts{c.Unread - o.Unread, c.Unseen - o.Unseen, c.Total - o.Total}
}

// Archived says how a listing treats archived notifications.
type Archived int

// Listing modes of archived notifications.
const (
	ArchivedExclude Archived = iota // the inbox: archived ones left out
	ArchivedOnly                    // the archive
	ArchivedAny                     // both
)

// InboxFilter selects notifications of one recipient; deleted ones are
// never listed. Filters combine (and).
type InboxFilter struct {
	Unread      bool
	Unseen      bool
	Archived    Archived
	Type        string // "" any
	OrganizerID string // "" any
}

// MaxChangeIDs bounds the ids of one state change: the ids one request may
// name, and those an updated frame lists.
const MaxChangeIDs = 1000

// Change is what a state change did.
type Change struct {
	Op Op
	// IDs are the notifications whose state changed (with All, at most
	// MaxChangeIDs of them, newest first).
	IDs []uuid.UUID
	// Found are the named notifications the recipient has (and has not
	// deleted), changed or not.
	Found []uuid.UUID
	// Updated counts the notifications whose state changed.
	Updated int64
	// All: the change applied to every notification of the recipient.
	All bool
	// Pos is the change's position in the recipient's stream and Counts
	// the recipient's counts after it (when Updated > 0).
	Pos    int64
	Counts Counts
}

// StateChange is the data of a notification-updated frame: which
// notifications changed, and the new value of each state that changed
// (the others are left out). All: an "all" operation (read-all, seen all,
// delete-all) changed every notification the recipient had; IDs then lists
// at most MaxChangeIDs of them, newest first.
type StateChange struct {
	IDs        []string `json:"ids"`
	All        bool     `json:"all,omitempty"`
	IsRead     *bool    `json:"isRead,omitempty"`
	IsSeen     *bool    `json:"isSeen,omitempty"`
	IsArchived *bool    `json:"isArchived,omitempty"`
	IsDeleted  *bool    `json:"isDeleted,omitempty"`
}

// Frame is the data of the change's notification-updated frame.
func (c Change) Frame() StateChange {
	sc := StateChange{IDs: make([]string, len(c.IDs)), All: c.All}
	for i, id := range c.IDs {
		sc.IDs[i] = id.String()
	}
	// Marking unread marks seen too (one marks unread what one has seen):
	// an unread notification that was not seen changes by its seen state.
	sc.IsRead, sc.IsSeen, sc.IsArchived, sc.IsDeleted = c.Op.Sets()
	return sc
}
