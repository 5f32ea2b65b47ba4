package auth

import (
	"strings"

	"github.com/signal-notify/signal/internal/event"
)

// PatternAllows reports whether a pattern of a token's rooms claim allows
// room. Patterns match whole path segments:
//
//   - "*" alone allows every room;
//   - a pattern whose last segment is "*" ("a/b/*") allows every room below
//     its other segments: "a/b/x" and "a/b/x/y", not "a/b", "a/b/" nor "a/bx";
//   - any other pattern allows exactly the room it names ("*" anywhere else
//     is an ordinary character: "a/u1*" allows only the room "a/u1*").
func PatternAllows(pattern, room string) bool {
	if pattern == "*" {
		return room != ""
	}
	if prefix, wild := strings.CutSuffix(pattern, "/*"); wild {
		rest, below := strings.CutPrefix(room, prefix+"/")
		return below && rest != ""
	}
	return pattern == room
}

// PatternIsWildcard reports whether a pattern matches more than one room.
func PatternIsWildcard(pattern string) bool {
	return pattern == "*" || strings.HasSuffix(pattern, "/*")
}

// PatternReachesOtherRecipients reports whether a pattern allows the
// notification rooms of more than one recipient ("*", "signal/*",
// "signal/notification/*", …): its holder may read their notifications.
func PatternReachesOtherRecipients(pattern string) bool {
	if pattern == "*" {
		return true
	}
	prefix, wild := strings.CutSuffix(pattern, "/*")
	if !wild {
		return false
	}
	p := prefix + "/"
	return strings.HasPrefix(event.NotificationRoomPrefix, p) || strings.HasPrefix(p, event.NotificationRoomPrefix)
}
