package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/testkit"
)

// Ctrl-C on `make run` ends quietly after serve's clean drain: serve exits
// 130 as every command does on Ctrl-C, and make must not report that as
// "make: *** [Makefile:…: run] Error 130" (issue 27, item 15). The
// terminal's Ctrl-C is a SIGINT to the whole foreground process group; a
// stand-in signalctl (BIN=…) plays dev-db up and a serve that drains.
func TestCtrlCOnMakeRunEndsWithoutAnError(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is needed: it is what the README runs")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "signalctl")
	marker := filepath.Join(dir, "serving")
	script := `#!/bin/sh
case "$1" in
dev-db) echo "postgres://postgres:pw@127.0.0.1:1/signal" ;;
serve)
	[ "$SIGNAL_DATABASE_URL" = "postgres://postgres:pw@127.0.0.1:1/signal" ] || { echo "no URL from dev-db up" >&2; exit 1; }
	trap 'sleep 0.3; echo drained >&2; exit 130' INT
	touch ` + marker + `
	while :; do sleep 0.05; done ;;
esac
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// -o build: the stand-in is the binary; nothing is compiled.
	cmd := exec.Command("make", "--no-print-directory", "-C", "../..", "-o", "build", "run", "BIN="+fake)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	testkit.Eventually(t, 20*time.Second, "serve to start", func() bool { _, err := os.Stat(marker); return err == nil })
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // the whole group, as a terminal does
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("make run did not stop after Ctrl-C:\n%s", out.String())
	}
	text := out.String()
	if !strings.Contains(text, "drained") {
		t.Errorf("serve did not get to drain:\n%s", text)
	}
	if strings.Contains(text, "Error") || strings.Contains(text, "***") {
		t.Errorf("make reported the Ctrl-C as a failure:\n%s", text)
	}
	// make itself ends by the SIGINT (a shell shows 130 and no message).
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !(ws.Signaled() && ws.Signal() == syscall.SIGINT) && ws.ExitStatus() != 0 {
		t.Errorf("make ended with %v", cmd.ProcessState)
	}
}
