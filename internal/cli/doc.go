// Package cli is signalctl's cobra layer and nothing else: each command is an
// Options struct, a newCmdX that only fills it from flags, and an xRun that
// does the work without touching cobra. Data goes to stdout, messages and
// progress to stderr. Exit codes: 0 success, 1 failure, 2 usage error.
//
// This is the only package that may end the process.
package cli
