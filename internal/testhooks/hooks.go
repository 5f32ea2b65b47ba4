package testhooks

import (
	"sync/atomic"
	"time"
)

var shutdownStall atomic.Int64

// ShutdownStall is how long a routine of serve goes on after its stop was
// asked for (0: no such routine).
func ShutdownStall() time.Duration { return time.Duration(shutdownStall.Load()) }

// SetShutdownStall sets ShutdownStall for the serve runs started from now
// on; it returns the function that puts the previous value back.
func SetShutdownStall(d time.Duration) (restore func()) {
	prev := shutdownStall.Swap(int64(d))
	return func() { shutdownStall.Store(prev) }
}
