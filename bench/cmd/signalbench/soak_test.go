package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// A short production day (about a minute of faults): three instances, a
// SIGKILL, a rolling restart, a failover to the synchronous replica, a
// broker restart, a burst and hostile clients, under traffic. Its
// correctness rows must be 0: no row lost or stored twice, no change
// missed by a device, no count drift. `make soak` runs the full day.
func TestAShortProductionDayLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("the short soak runs in make test, not with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	e, err := newEnv(ctx, &config{bin: signalctl(t), timeout: 8 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	x := &soakRun{o: syncOptions{name: "soak", replica: true, brokerDisk: true, rows: true,
		devices: 200, rate: 100, members: 50, phase: 6 * time.Second, dropPct: 5, burst: 5, hostile: 10,
		inboxRate: 10, instances: 3}, faults: "kill,rolling,failover,broker-restart,burst,hostile", orgEvery: 3 * time.Second}
	if err := x.check(); err != nil {
		t.Fatal(err)
	}
	err = e.scoped(ctx, "soak", x.measure)
	if x.res == nil {
		t.Fatal(err)
	}
	r := x.res
	t.Logf("%d messages, %d rows, %d state changes, %d sessions, %d resets; faults %+v; hostile %+v",
		r.Messages, r.RowsExpected, r.StateChanges, r.Sessions, r.Resets, r.Faults, r.Hostile)
	if err != nil {
		t.Fatalf("%v (examples: %v)", err, r.Examples)
	}
	if r.RowsExpected < r.Messages || r.ChangesApplied == 0 || len(r.Faults) != 3 {
		t.Fatalf("the day did not happen: %d rows expected for %d messages, %d changes applied, %d faults measured",
			r.RowsExpected, r.Messages, r.ChangesApplied, len(r.Faults))
	}
	if h := r.Hostile; h == nil || h.SilentCut != h.Silent || h.SlowCut != h.Slow || h.Silent == 0 || h.Slow == 0 {
		t.Fatalf("hostile connections not all cut by the server: %+v", h)
	}
}

// signalctl is the binary under test, built now from this checkout (the
// build cache makes it a link), so that a run after a code change never
// tests an older bin/signalctl.
func signalctl(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "signalctl")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/signalctl")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build signalctl: %v\n%s", err, out)
	}
	return bin
}
