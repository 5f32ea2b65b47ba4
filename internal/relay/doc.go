// Package relay lets several serve instances act as one, on PostgreSQL
// alone: each instance registers itself with a heartbeat and lists the
// WebSocket clients and rooms it holds (UNLOGGED tables), and frames for
// clients held elsewhere travel as LISTEN/NOTIFY messages on one channel.
//
// NOTIFY messages of one transaction arrive together and in commit order.
// A message larger than a NOTIFY payload is stored in relay_payloads and
// the NOTIFY carries its id. Notifications are relayed only to instances
// that hold a member of their room, so one instance pays nothing for it.
package relay
