// Package event is Signal's domain: the inbound TActivityNotificationMessage
// and its validation, the outbound notification payload and WebSocket frame,
// room and topic names, content templates and the deterministic ids that make
// redelivery harmless.
//
// It imports only the standard library; every other package may import it.
package event
