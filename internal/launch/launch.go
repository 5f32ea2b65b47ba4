package launch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Command is exec.Command with the child tied to this process.
func Command(name string, arg ...string) *exec.Cmd {
	return Tie(exec.Command(name, arg...))
}

// CommandContext is exec.CommandContext with the child tied to this process.
func CommandContext(ctx context.Context, name string, arg ...string) *exec.Cmd {
	return Tie(exec.CommandContext(ctx, name, arg...))
}

// Tie sets Pdeathsig SIGKILL and a process group of its own on cmd (other
// SysProcAttr fields are kept) and returns it. Call it before Start.
func Tie(cmd *exec.Cmd) *exec.Cmd {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true
	return cmd
}

// Process is a started child whose end is watched.
type Process struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start ties cmd to this process, starts it and watches for its end.
func Start(cmd *exec.Cmd) (*Process, error) {
	Tie(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Done is closed once the child has ended and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the child ended (nil: exit status 0); valid once Done is closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Kill ends the child with SIGKILL (no cleanup of any kind) and waits for it.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Stopped is how a Term went.
type Stopped struct {
	Took   time.Duration // from SIGTERM to the end (or to the SIGKILL)
	Err    error         // the exit error; nil for status 0
	Killed bool          // grace passed: SIGKILL was sent
}

// Term sends SIGTERM and waits up to grace for the child to end; past it,
// it kills the child. A child that had already ended reports its exit.
func (p *Process) Term(grace time.Duration) Stopped {
	start := time.Now()
	if p.Exited() {
		return Stopped{Err: p.err}
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return Stopped{Took: time.Since(start), Err: p.err}
	case <-t.C:
		took := time.Since(start)
		p.Kill()
		return Stopped{Took: took, Err: p.err, Killed: true}
	}
}

// ErrExited is returned by WaitReady when the child ended first.
var ErrExited = errors.New("the process ended before it was ready")

// WaitReady polls url (every 20 ms) until it answers 200. It fails when
// the child ends first (ErrExited, with its exit error), when timeout
// passes or when ctx ends.
func (p *Process) WaitReady(ctx context.Context, url string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	cl := &http.Client{Timeout: time.Second}
	for {
		if p.Exited() {
			return 0, fmt.Errorf("%w: %v", ErrExited, p.err)
		}
		if resp, err := cl.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("%s did not answer 200 within %s", url, timeout)
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-p.done:
			t.Stop()
		case <-t.C:
		}
	}
}

// Serve is what points a `signalctl serve` child at its parts: no config
// file, the given database, broker, address and secrets, and the earliest
// offset for a new group.
type Serve struct {
	DatabaseURL string
	Broker      string
	Addr        string // SIGNAL_HTTP_ADDR
	JWTSecret   string
	APIKey      string
	DevState    string // SIGNAL_DEV_STATE: a file of the caller's, not the user's
}

// Env is the environment of such a child: this process's, then Serve's
// settings, then extra (KEY=VALUE; later entries win).
func (s Serve) Env(extra ...string) []string {
	env := append(os.Environ(),
		"SIGNAL_CONFIG=", "NO_COLOR=1", "SIGNAL_DEV_STATE="+s.DevState,
		"SIGNAL_DATABASE_URL="+s.DatabaseURL, "SIGNAL_KAFKA_BROKERS="+s.Broker,
		"SIGNAL_KAFKA_RESET_OFFSET=earliest",
		"SIGNAL_AUTH_JWT_SECRET="+s.JWTSecret, "SIGNAL_API_KEYS="+s.APIKey,
		"SIGNAL_HTTP_ADDR="+s.Addr)
	return append(env, extra...)
}
