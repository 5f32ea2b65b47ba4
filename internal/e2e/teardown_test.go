package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/launch"
	"github.com/signal-notify/signal/internal/testkit"
)

// recorder is a test as launchServe sees it: it keeps the errors reported
// and the cleanups, which the test runs when it wants to see the outcome.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *recorder) end() string {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}

// The end of an e2e test stops the serve processes it left running and
// fails the test when one overran its shutdown (injected here through the
// test build's SIGNAL_TEST_SHUTDOWN_STALL) or had ended on its own.
func TestTheEndOfATestFailsItWhenServeOverranItsShutdownOrEndedEarly(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)

	t.Run("a shutdown past shutdown.timeout", func(t *testing.T) {
		rec := &recorder{TB: t}
		startServe(rec, env, "SIGNAL_TEST_SHUTDOWN_STALL=5s", "SIGNAL_SHUTDOWN_TIMEOUT=1s")
		errs := rec.end()
		if !strings.Contains(errs, "exit status 1") || !strings.Contains(errs, "test shutdown stall") {
			t.Errorf("the overrun did not fail the test; errors: %q", errs)
		}
	})

	t.Run("a serve that ended before the end", func(t *testing.T) {
		rec := &recorder{TB: t}
		p := startServe(rec, env)
		_ = syscall.Kill(p.p.Pid(), syscall.SIGKILL) // not through p.kill: as a crash
		<-p.p.Done()
		if errs := rec.end(); !strings.Contains(errs, "serve ended before the end of the test") {
			t.Errorf("the early end did not fail the test; errors: %q", errs)
		}
	})

	t.Run("a clean stop", func(t *testing.T) {
		rec := &recorder{TB: t}
		startServe(rec, env)
		if errs := rec.end(); errs != "" {
			t.Errorf("a clean stop failed the test: %s", errs)
		}
	})
}

// alive reports whether pid runs (a zombie no one reaps has ended).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || len(b) < i+3 || b[i+2] != 'Z'
}

// A `go test` killed in any way takes its signalctl processes with it:
// those it started (launch: Pdeathsig) and those a shell it started did
// (the test build's own Pdeathsig). The test binary is run again as the
// helper below, which starts both and is then killed with SIGKILL.
func TestNoSignalctlOutlivesAKilledTestBinary(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperServesUntilKilled$", "-test.timeout=5m")
	helper.Env = append(os.Environ(), "SIGNAL_E2E_HELPER=1", envSignalctl+"="+signalctl(t),
		"SIGNAL_E2E_HELPER_DB="+env.DBURL, "SIGNAL_E2E_HELPER_BROKER="+env.Broker)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = helper.Process.Kill(); _ = helper.Wait() }()
	var pids []int
	sc := bufio.NewScanner(out)
	for pids == nil && sc.Scan() {
		if f, ok := strings.CutPrefix(sc.Text(), "helper pids "); ok {
			for _, s := range strings.Fields(f) {
				pid, _ := strconv.Atoi(s)
				pids = append(pids, pid)
			}
		}
	}
	if len(pids) != 2 || !alive(pids[0]) || !alive(pids[1]) {
		var state []string
		for _, pid := range pids {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			state = append(state, fmt.Sprintf("%d alive %v: %.60s", pid, alive(pid), b))
		}
		t.Fatalf("helper: pids %v (%v): %s", pids, sc.Err(), strings.Join(state, "; "))
	}
	defer func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	_ = helper.Process.Kill()
	_ = helper.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("signalctl %d (of %v) still runs 10s after its test binary was killed", pid, pids)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestHelperServesUntilKilled is the killed test binary of the test above;
// it runs only as that helper.
func TestHelperServesUntilKilled(t *testing.T) {
	if os.Getenv("SIGNAL_E2E_HELPER") == "" {
		t.Skip("the helper process of TestNoSignalctlOutlivesAKilledTestBinary")
	}
	env := &testkit.Env{DBURL: os.Getenv("SIGNAL_E2E_HELPER_DB"), Broker: os.Getenv("SIGNAL_E2E_HELPER_BROKER")}
	direct := startServe(t, env)
	// A grandchild: bash starts serve in the background and waits.
	addr := freeAddr(t)
	sh := launch.Command("bash", "-c", `"$0" serve --log-format json >/dev/null 2>&1 & echo $!; wait`, signalctl(t))
	sh.Env = launch.Serve{DatabaseURL: env.DBURL, Broker: env.Broker, Addr: addr,
		JWTSecret: testkit.JWTSecret, APIKey: testkit.APIKey, DevState: t.TempDir() + "/dev.json"}.Env()
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 60*time.Second, "the grandchild serve to be ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if direct.exited() {
		t.Fatalf("the direct serve ended: %v\n%s", direct.p.Err(), tail(direct.logs.String(), 20))
	}
	time.Sleep(time.Second)
	if direct.exited() {
		fmt.Fprintf(os.Stderr, "the direct serve ended: %v\n%s", direct.p.Err(), tail(direct.logs.String(), 40))
	}
	fmt.Printf("helper pids %d %s\n", direct.p.Pid(), strings.TrimSpace(line))
	time.Sleep(2 * time.Minute) // until killed
}
