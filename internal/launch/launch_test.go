package launch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the helper processes: LAUNCH_TEST_HELPER
// names what it does instead of running the tests.
func TestMain(m *testing.M) {
	switch os.Getenv("LAUNCH_TEST_HELPER") {
	case "parent": // starts a child through launch, prints its pid, waits
		cmd := Command("sleep", "120")
		if err := cmd.Start(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(cmd.Process.Pid)
		time.Sleep(120 * time.Second)
		os.Exit(0)
	case "ignore-term": // a child that does not stop on SIGTERM
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(120 * time.Second)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// alive reports whether pid runs (a zombie waiting for its reaper has
// ended: PID 1 of a container may never reap it).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || len(b) < i+3 || b[i+2] != 'Z'
}

func TestAChildDiesWhenItsParentIsKilled(t *testing.T) {
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), "LAUNCH_TEST_HELPER=parent")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = parent.Process.Kill(); _ = parent.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper: %q", line)
	}
	defer func() { _ = syscall.Kill(child, syscall.SIGKILL) }()
	if !alive(child) {
		t.Fatalf("child %d not running", child)
	}
	// SIGKILL: the parent runs no code of its own after it, as when
	// `go test` is killed or times out.
	_ = parent.Process.Kill()
	_ = parent.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(child) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still running 10s after its parent was killed", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTermKillsAChildThatIgnoresSIGTERMAfterTheGrace(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LAUNCH_TEST_HELPER=ignore-term")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	st := p.Term(200 * time.Millisecond)
	if !st.Killed || !p.Exited() || st.Took < 200*time.Millisecond {
		t.Fatalf("Term = %+v, exited %v: want a kill after the 200ms grace", st, p.Exited())
	}

	// A child that stops on SIGTERM is not killed, and its exit is reported.
	p2, err := Start(exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	st = p2.Term(10 * time.Second)
	var exit *exec.ExitError
	if st.Killed || !errors.As(st.Err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("Term of sleep = %+v, want its end by SIGTERM", st)
	}
	if got := p2.Cmd.SysProcAttr; got == nil || got.Pdeathsig != syscall.SIGKILL || !got.Setpgid {
		t.Errorf("Start did not tie the child: %+v", got)
	}
}

func TestWaitReadyFailsWhenTheChildEnds(t *testing.T) {
	p, err := Start(exec.Command("sh", "-c", "exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.WaitReady(context.Background(), "http://127.0.0.1:1/readyz", 10*time.Second)
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("WaitReady = %v, want ErrExited with the exit status", err)
	}
}

func TestServeEnvPutsExtraLast(t *testing.T) {
	env := Serve{DatabaseURL: "postgres://db", Broker: "127.0.0.1:9", Addr: "127.0.0.1:0"}.Env("SIGNAL_KAFKA_RESET_OFFSET=latest")
	last := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		last[k] = v
	}
	if last["SIGNAL_DATABASE_URL"] != "postgres://db" || last["SIGNAL_CONFIG"] != "" || last["SIGNAL_KAFKA_RESET_OFFSET"] != "latest" {
		t.Errorf("env %v", last)
	}
}
