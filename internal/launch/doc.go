// Package launch starts child processes that cannot outlive their parent:
// the `signalctl serve` processes of the e2e tests and of the benchmark
// harness, the harness's client processes, and the other commands the tests
// run (bash, kcat, node).
//
// Every child gets Pdeathsig SIGKILL, so a test binary or harness killed in
// any way (SIGKILL, a `go test` timeout, Ctrl-C) takes its children with it,
// and a process group of its own, so a Ctrl-C at the terminal reaches only
// the parent, which stops its children in order. The kernel sends Pdeathsig
// when the thread that forked the child exits; the Go runtime ends a thread
// only when a goroutine locked to it returns, which neither the tests nor
// the harness do, so in practice it fires when the process ends.
//
// Process watches a started child; Serve is the environment that points a
// `signalctl serve` at a broker, a database and an address.
package launch
