package leakcheck

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"
)

// module is the import path prefix of Signal's code.
const module = "github.com/signal-notify/signal/"

// Grace is how long After waits for goroutines that are ending.
var Grace = 5 * time.Second

// After returns code when it is not 0 (the tests failed: that is the
// news); else it waits up to Grace for Signal's goroutines to end and
// returns 1, printing them, if some did not.
func After(code int) int {
	if code != 0 {
		return code
	}
	left := Wait(Grace)
	if len(left) == 0 {
		return 0
	}
	fmt.Fprintf(os.Stderr, "leakcheck: %d goroutine(s) of Signal's code still running %s after the tests:\n\n%s\n",
		len(left), Grace, strings.Join(left, "\n\n"))
	return 1
}

// Wait waits up to grace for Signal's goroutines (other than the caller)
// to end and returns the stacks of those left.
func Wait(grace time.Duration) []string {
	http.DefaultClient.CloseIdleConnections() // their read loops keep no code of ours, but free them
	deadline := time.Now().Add(grace)
	for {
		left := Running()
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running returns the stacks of the goroutines, other than the caller,
// that run a function of Signal's code or were created by one.
func Running() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := strings.Split(string(buf), "\n\n")
	var out []string
	for _, s := range stacks[1:] { // the first is the caller's
		if ours(s) {
			out = append(out, s)
		}
	}
	return out
}

// ours reports whether a goroutine's stack has a frame of Signal's code or
// was created by it.
func ours(stack string) bool {
	for _, line := range strings.Split(stack, "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "created by ")
		if strings.HasPrefix(line, module) {
			return true
		}
	}
	return false
}
