package event

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxRoomBytes bounds a room name; MaxIDBytes (message.go) bounds every
// other identifier.
const MaxRoomBytes = 512

// ErrInvalidID is wrapped by every error of ValidateID and ValidateRoom.
var ErrInvalidID = errors.New("invalid identifier")

// ValidateID applies the one rule every identifier follows — a token's sub,
// a recipientId, a clientId, an organizer or merchant id: non-empty, valid
// UTF-8, no control character (U+0000–U+001F, U+007F), at most MaxIDBytes
// bytes. what names the identifier in the error ("recipientId").
//
// Anything else is refused where it enters (a 400, a 401, an error frame, a
// dead letter), so it never reaches PostgreSQL, which cannot store NUL and
// would otherwise answer with an error that looks like an outage.
func ValidateID(what, id string) error {
	return validate(what, id, MaxIDBytes)
}

// ValidateRoom applies the same rule to a room name, with MaxRoomBytes.
// Any other character, "/" and spaces included, is allowed.
func ValidateRoom(room string) error {
	return validate("room name", room, MaxRoomBytes)
}

func validate(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is required", ErrInvalidID, what)
	case len(s) > max:
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidID, what, max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s must be valid UTF-8", ErrInvalidID, what)
	}
	// UTF-8 sequences of other characters never hold a byte below 0x80, so
	// a byte scan finds exactly U+0000–U+001F and U+007F.
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: %s must not contain control characters (found U+%04X at byte %d)", ErrInvalidID, what, c, i)
		}
	}
	return nil
}
