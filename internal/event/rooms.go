package event

import "strings"

// Topics of frames the server sends.
const (
	TopicNotificationCreated = "observation/signal/notification/created"
	TopicNotificationRead    = "observation/signal/notification/read"
	TopicNotificationUpdated = "observation/signal/notification/updated"
	TopicWelcome             = "signal/system/welcome"
	TopicJoined              = "signal/system/joined"
	TopicLeft                = "signal/system/left"
	TopicPong                = "signal/system/pong"
	TopicRefreshed           = "signal/system/refreshed"
	TopicError               = "signal/system/error"
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
