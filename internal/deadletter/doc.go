// Package deadletter puts dead letters through the ingest pipeline again,
// after their cause was fixed ("signalctl deadletters replay").
//
// A replay walks the waiting dead letters page by page in id order (a
// keyset cursor), so it holds one page in memory whatever the table's size,
// and it handles the dead letters that were waiting when it started, not the
// ones that arrive meanwhile. Each page is stored, pushed and marked replayed
// as a whole; an interrupted replay stops between pages and a rerun goes on
// where it stopped. Notification ids derive from the original record, so a
// page replayed twice (a crash between storing and marking) stores nothing
// twice.
//
// The package depends on store, ingest and relay only, not on the CLI, so
// the daemon can run a replay the same way.
package deadletter
