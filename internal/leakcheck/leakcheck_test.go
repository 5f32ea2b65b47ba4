package leakcheck

import (
	"strings"
	"testing"
	"time"
)

func parked(stop <-chan struct{}) { <-stop }

func TestAGoroutineOfOursIsFoundUntilItEnds(t *testing.T) {
	stop := make(chan struct{})
	go parked(stop)
	left := Wait(200 * time.Millisecond)
	if len(left) != 1 || !strings.Contains(left[0], "leakcheck.parked") {
		t.Fatalf("left = %q, want the parked goroutine", left)
	}
	close(stop)
	if left := Wait(5 * time.Second); len(left) != 0 {
		t.Fatalf("still reported after it ended: %q", left)
	}
	if After(3) != 3 {
		t.Error("After replaced the tests' failure")
	}
}

func TestOnlyStacksOfSignalsCodeAreOurs(t *testing.T) {
	for stack, want := range map[string]bool{
		"goroutine 7 [select]:\nnet/http.(*persistConn).readLoop(0xc0)\n\t/usr/local/go/src/net/http/transport.go:2395\ncreated by net/http.(*Transport).dialConn in goroutine 6": false,
		"goroutine 8 [chan receive]:\ngithub.com/signal-notify/signal/internal/hub.(*Hub).keepAlive(0xc0)\n\t/src/hub.go:10":                                                      true,
		"goroutine 9 [IO wait]:\nnet/http.(*Server).Serve(0xc0)\n\t/go/src/net/http/server.go:3\ncreated by github.com/signal-notify/signal/internal/daemon.Run in goroutine 1":   true,
	} {
		if got := ours(stack); got != want {
			t.Errorf("ours(%q) = %v, want %v", stack, got, want)
		}
	}
}
