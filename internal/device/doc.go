// Package device is the reference client of the sync stream: a device
// that follows docs/sync-stream.md to the letter (a cursor per stream,
// changes applied by position, resume with ?since=, reload on reset) and
// can compare what it shows with the database. The e2e tests and the bench
// run thousands of them; its Legacy mode is the client of the protocol
// before the stream, for comparisons with the previous build.
package device
