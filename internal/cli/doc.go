// Package cli is signalctl's cobra layer and nothing else: each command is an
// Options struct, a newCmdX that only fills it from flags, and an xRun that
// does the work without touching cobra. Data goes to stdout, messages and
// progress to stderr. Exit codes: 0 success, 1 failure, 2 usage error, 130
// interrupted (Ctrl-C: the command stops cleanly first; see Execute). Work
// that is more than calling a library (dead-letter replay, say) lives in its
// own package, which the daemon can use too.
//
// This is the only package that may end the process.
package cli
