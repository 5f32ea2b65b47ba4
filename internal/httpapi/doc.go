// Package httpapi is Signal's HTTP surface: the WebSocket endpoint's
// authentication, the REST API, health, readiness and metrics. Handlers are
// thin: they check input and credentials, answer JSON errors of one shape,
// and call the hub, the relay or the store through small interfaces.
package httpapi
