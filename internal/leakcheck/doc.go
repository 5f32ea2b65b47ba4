// Package leakcheck fails a test binary whose tests left goroutines of
// Signal's own code running: started by a package of this module or
// running one of its functions, still there a few seconds after the last
// test ended. Goroutines of libraries alone (an idle HTTP connection, a
// test broker) are not Signal's and are left to their owners.
//
// Apply it in the package's TestMain, after the tests (and after pgtest
// stopped its cluster):
//
//	func TestMain(m *testing.M) { os.Exit(leakcheck.After(pgtest.Main(m))) }
//
// It runs once all tests are done, so it works with t.Parallel. Leftovers
// are printed with their stacks; a pprof label "routine" (daemon's
// routines) names whose they are.
package leakcheck
