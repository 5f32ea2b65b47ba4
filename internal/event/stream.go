package event

// The sync stream's domain types (internal/stream owns the protocol).

// Push is one frame for one room. Pos > 0 when it is a change of the
// room's recipient's stream, at that position.
type Push struct {
	Room  string
	Pos   int64
	Frame []byte
}

// StreamHead is where a recipient's stream stands.
type StreamHead struct {
	// Pos is the position of its last change (0: none yet).
	Pos int64
	// Floor: positions up to it are those of notifications stored before
	// dense positions existed (migration 0009); dense above it.
	Floor int64
	// Counts are the recipient's counts at Pos (nil: not known without a
	// recount).
	Counts *Counts
}

// StreamChange is one change of a stream, as the frame a client receives.
type StreamChange struct {
	Pos   int64
	Frame []byte
}

// StreamPage is a page of a stream's changes, oldest first, and where the
// stream stood when they were read.
type StreamPage struct {
	Changes []StreamChange
	Head    StreamHead
}

// Removed is the data of a notification-removed frame.
type Removed struct {
	IDs    []string `json:"ids"`
	Reason string   `json:"reason"`
}

// Why notifications were removed.
const (
	RemovedDeleted = "deleted" // deleted since (a catch-up's stand-in for its created change)
	RemovedExpired = "expired" // its expiresAt passed
	// RemovedRetracted: its event was retracted (DELETE /events/{eventId}).
	RemovedRetracted = "retracted"
	// RemovedRevoked: the recipient left the organizer or merchant it was
	// for (members.revoke_on_remove).
	RemovedRevoked = "revoked"
)

// Synced is the data of signal/system/synced and signal/system/reset.
type Synced struct {
	Room   string  `json:"room"`
	Pos    int64   `json:"pos"`
	Counts *Counts `json:"counts,omitempty"`
	Reason string  `json:"reason,omitempty"` // reset only
}

// Reasons of a reset.
const (
	ResetExpired = "expired" // changes after the cursor are no longer kept, or too many
	ResetUnknown = "unknown" // since names no notification of the recipient
	ResetAhead   = "ahead"   // since is beyond the stream's last position
)

// RowPushes encodes the created frames of the rows whose room want
// accepts (nil: all), each once.
func RowPushes(rows []*Row, want func(room string) bool) []Push {
	var out []Push
	var b FrameBuilder
	for _, r := range rows {
		if room := r.Room(); want == nil || want(room) {
			out = append(out, Push{Room: room, Pos: r.Seq, Frame: b.Frame(r)})
		}
	}
	return out
}
