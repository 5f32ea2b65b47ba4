package event

import "strings"

// Topics of frames the server sends.
const (
	TopicNotificationCreated = "observation/signal/notification/created"
	TopicNotificationRead    = "observation/signal/notification/read"
	TopicNotificationUpdated = "observation/signal/notification/updated"
	// TopicNotificationRemoved: notifications left the inbox other than by
	// a state change (a catch-up's stand-in for a created change whose
	// notification is gone since; expiry and retraction later).
	TopicNotificationRemoved = "observation/signal/notification/removed"
	TopicWelcome             = "signal/system/welcome"
	TopicJoined              = "signal/system/joined"
	TopicLeft                = "signal/system/left"
	TopicPong                = "signal/system/pong"
	TopicRefreshed           = "signal/system/refreshed"
	TopicError               = "signal/system/error"
	// TopicSynced: every change of a stream up to a position was sent.
	TopicSynced = "signal/system/synced"
	// TopicReset: a stream cannot resume from the client's position.
	TopicReset = "signal/system/reset"
)

// NotificationRoomPrefix starts every recipient's room name.
const NotificationRoomPrefix = "signal/notification/"

// NotificationRoom is the room a recipient's notifications are pushed to.
func NotificationRoom(recipientID string) string { return NotificationRoomPrefix + recipientID }

// RecipientOfRoom returns the recipient whose notification room this is.
func RecipientOfRoom(room string) (string, bool) {
	id, ok := strings.CutPrefix(room, NotificationRoomPrefix)
	return id, ok && id != ""
}
