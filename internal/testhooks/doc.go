// Package testhooks holds the faults tests inject into the product to check
// that their teardown notices them. Nothing sets them in a release build:
// they are not configuration (no file key, flag or documented variable).
//
// In-process tests set them with the Set functions. The `signalctl` the e2e
// tests build carries the build tag signal_testhooks, which reads them from
// the environment (env.go) and also ties the process to its parent with
// Pdeathsig, so that a signalctl a shell started for a test (not through
// internal/launch) dies with that shell too.
//
//	SIGNAL_TEST_SHUTDOWN_STALL=5s   serve's shutdown waits 5 s for a routine that
//	                                 ends only then (past shutdown.timeout: an overrun)
package testhooks
