// Package connlimit caps the TCP connections of a listener: in all and per
// source address, counting every connection the listener accepted until it
// is closed — requests in progress, idle keep-alives and upgraded
// WebSockets alike. A connection past the per-address cap is answered 429
// and closed at once; past the total cap, a few more are kept for health
// checks (Reserve), which may only ask the paths the Guard lets through.
package connlimit
