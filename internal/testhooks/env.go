//go:build signal_testhooks

package testhooks

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// The e2e tests' signalctl: the hooks from the environment, and death with
// the parent (prctl PR_SET_PDEATHSIG).
func init() {
	if v := os.Getenv("SIGNAL_TEST_SHUTDOWN_STALL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "SIGNAL_TEST_SHUTDOWN_STALL: %v\n", err)
			os.Exit(2)
		}
		SetShutdownStall(d)
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "prctl(PR_SET_PDEATHSIG): %v\n", errno)
		os.Exit(2)
	}
	if os.Getppid() == 1 { // the parent died before the prctl
		os.Exit(2)
	}
}
