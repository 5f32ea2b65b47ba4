package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/signal-notify/signal/internal/launch"
	"github.com/signal-notify/signal/internal/testkit"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// envSignalctl names a signalctl already built for this run: a helper
// process of a test (TestNoSignalctlOutlivesAKilledTestBinary) uses the
// parent's instead of building its own; set by hand, it runs another
// build (e.g. main's) to check that a test fails there and passes here.
const envSignalctl = "SIGNAL_E2E_SIGNALCTL"

// signalctl builds the binary once per test run: with the race detector
// when the tests have it, and with the test hooks (internal/testhooks:
// faults from the environment, death with the parent).
func signalctl(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if b := os.Getenv(envSignalctl); b != "" {
			binary = b
			return
		}
		dir, err := os.MkdirTemp("", "signalctl-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "signalctl")
		args := []string{"build", "-tags", "signal_testhooks", "-o", binary}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := launch.Command("go", append(args, "github.com/signal-notify/signal/cmd/signalctl")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// proc is a `signalctl serve` process.
type proc struct {
	t    testing.TB
	p    *launch.Process
	addr string
	logs *syncBuffer
	// stopped: the test ended the process itself (kill, term) and looked
	// at how; the end of the test leaves it alone.
	stopped atomic.Bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs serve on env in a child process and waits until ready.
func startServe(t testing.TB, env *testkit.Env, extra ...string) *proc {
	t.Helper()
	p := launchServe(t, env, extra...)
	p.waitReady(30 * time.Second)
	return p
}

// launchServe runs serve on env in a child process (extra environment
// entries win over the defaults) and returns at once. The child dies with
// the test binary (launch: Pdeathsig). At the end of the test, one that
// the test did not stop itself must still run and must stop cleanly on
// SIGTERM (exit status 0 within its shutdown.timeout), else the test fails.
func launchServe(t testing.TB, env *testkit.Env, extra ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	p := &proc{t: t, addr: addr, logs: &syncBuffer{}}
	cmd := launch.Command(signalctl(t), "serve", "--log-format", "json")
	cmd.Env = append(serveEnv(t, env, addr), extra...)
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	var err error
	if p.p, err = launch.Start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stopAtEnd)
	return p
}

// stopGrace bounds the stop at the end of a test: longer than serve's
// default shutdown.timeout, which reports an overrun itself.
const stopGrace = 60 * time.Second

// stopAtEnd is the end of the test for a process it left running.
func (p *proc) stopAtEnd() {
	if p.stopped.Load() {
		return
	}
	p.stopped.Store(true)
	if p.p.Exited() {
		p.t.Errorf("serve ended before the end of the test: %v\n%s", p.p.Err(), tail(p.logs.String(), 30))
		return
	}
	st := p.p.Term(stopGrace)
	switch {
	case st.Killed:
		p.t.Errorf("serve did not stop within %s of SIGTERM at the end of the test: killed\n%s", stopGrace, tail(p.logs.String(), 30))
	case st.Err != nil:
		p.t.Errorf("serve, stopped at the end of the test: %v after %s\n%s", st.Err, st.Took.Round(time.Millisecond), tail(p.logs.String(), 30))
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// serveEnv is the environment of a serve process on env listening on addr.
func serveEnv(t testing.TB, env *testkit.Env, addr string) []string {
	return launch.Serve{
		DatabaseURL: env.DBURL, Broker: env.Broker, Addr: addr,
		JWTSecret: testkit.JWTSecret, APIKey: testkit.APIKey,
		DevState: filepath.Join(t.TempDir(), "dev.json"),
	}.Env("SIGNAL_KAFKA_SESSION_TIMEOUT=1500ms", "SIGNAL_WEBSOCKET_CLOSE_WINDOW=300ms")
}

// waitReady waits until /readyz answers 200 and returns how long it took.
func (p *proc) waitReady(timeout time.Duration) time.Duration {
	p.t.Helper()
	took, err := p.p.WaitReady(context.Background(), "http://"+p.addr+"/readyz", timeout)
	if err != nil {
		p.t.Fatalf("serve: %v:\n%s", err, p.logs.String())
	}
	return took
}

// exited reports whether the process has ended.
func (p *proc) exited() bool { return p.p.Exited() }

func (p *proc) wsURL() string { return "ws://" + p.addr + "/socket/websocket" }

// kill ends the process with SIGKILL: no cleanup of any kind.
func (p *proc) kill() {
	p.stopped.Store(true)
	p.p.Kill()
}

// term sends SIGTERM and returns how long it took and the exit error.
func (p *proc) term(timeout time.Duration) (time.Duration, error) {
	p.stopped.Store(true)
	st := p.p.Term(timeout)
	if st.Killed {
		p.t.Fatalf("serve did not stop within %s after SIGTERM:\n%s", timeout, p.logs.String())
	}
	return st.Took, st.Err
}

// waitCaughtUp waits until the group has committed every partition's end.
func waitCaughtUp(t *testing.T, broker string, timeout time.Duration) {
	t.Helper()
	adm := kadm.NewClient(testkit.Producer(t, broker))
	ctx := context.Background()
	var behind []string // what the last look found, for the failure
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		behind = behind[:0]
		ends, err := adm.ListEndOffsets(ctx, testkit.Topic)
		if err == nil {
			var committed kadm.OffsetResponses
			if committed, err = adm.FetchOffsets(ctx, "SIGNAL_NOTIF_CONSUMER_GROUP"); err == nil {
				ends.Each(func(o kadm.ListedOffset) {
					if o.Offset == 0 {
						return
					}
					if c, found := committed.Lookup(o.Topic, o.Partition); !found || c.At != o.Offset {
						behind = append(behind, fmt.Sprintf("p%d committed %d of %d", o.Partition, c.At, o.Offset))
					}
				})
			}
		}
		if err == nil && len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			groups, _ := adm.DescribeGroups(ctx, "SIGNAL_NOTIF_CONSUMER_GROUP")
			var state []string
			for _, g := range groups.Sorted() {
				state = append(state, fmt.Sprintf("%s: %d members, err %v", g.State, len(g.Members), g.Err))
			}
			t.Fatalf("the consumer group did not commit to the end of the topic within %s: %v (err %v); group %v",
				timeout, behind, err, state)
		}
	}
}

// numbered is message i for two recipients, carrying i in its data.
func numbered(i int) []byte {
	return testkit.Message("users", []string{fmt.Sprintf("r%d", i%100), fmt.Sprintf("r%d", 100+i%100)}, func(m map[string]any) {
		m["data"] = map[string]any{"i": i}
	})
}

// produceSteadily sends messages [0, n) at about rate per second.
func produceSteadily(t *testing.T, broker string, n, rate int) <-chan struct{} {
	done := make(chan struct{})
	p := testkit.Producer(t, broker)
	go func() {
		defer close(done)
		const chunk = 250
		start := time.Now()
		for i := 0; i < n; i += chunk {
			var values [][]byte
			for j := i; j < min(i+chunk, n); j++ {
				values = append(values, numbered(j))
			}
			testkit.Produce(t, p, values...)
			if d := time.Until(start.Add(time.Duration(i+chunk) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
		}
	}()
	return done
}

func checkExactlyOnce(t *testing.T, env *testkit.Env, messages int) {
	t.Helper()
	rows := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`)
	distinct := testkit.Count(t, env.Store, `SELECT count(DISTINCT (data->>'i', recipient_id)) FROM notifications`)
	msgs := testkit.Count(t, env.Store, `SELECT count(DISTINCT data->>'i') FROM notifications`)
	if rows != 2*messages || distinct != 2*messages || msgs != messages {
		t.Fatalf("rows %d, distinct (message, recipient) %d, messages %d; want %d, %d, %d",
			rows, distinct, msgs, 2*messages, 2*messages, messages)
	}
}

func TestSIGKILLDuringIngestLosesNothingAndDuplicatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs in make test, not with -short")
	}
	env := testkit.NewEnv(t)
	const messages = 20000
	p := startServe(t, env, "SIGNAL_KAFKA_BATCH_SIZE=500")
	produced := produceSteadily(t, env.Broker, messages, 4000)
	kills := 0
	for {
		time.Sleep(time.Duration(400+kills*150) * time.Millisecond)
		p.kill()
		kills++
		t.Logf("kill %d: %d rows stored", kills, testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`))
		p = startServe(t, env, "SIGNAL_KAFKA_BATCH_SIZE=500")
		select {
		case <-produced:
		default:
			if kills < 8 {
				continue
			}
		}
		if kills >= 4 {
			break
		}
	}
	<-produced
	waitCaughtUp(t, env.Broker, 60*time.Second)
	if _, err := p.term(30 * time.Second); err != nil {
		t.Errorf("serve exited with %v after SIGTERM", err)
	}
	checkExactlyOnce(t, env, messages)
	t.Logf("%d messages, %d kills: exactly %d rows", messages, kills, 2*messages)
}

func TestSIGTERMUnderLoadCommitsItsBatchLeavesTheGroupAndClosesClientsWith1001(t *testing.T) {
	env := testkit.NewEnv(t)
	p := startServe(t, env, "SIGNAL_KAFKA_BATCH_SIZE=200")
	c1 := testkit.Dial(t, p.wsURL(), testkit.Token(t, "r1"))
	c2 := testkit.Dial(t, p.wsURL(), testkit.Token(t, "r2"))
	c1.Welcome()
	c2.Welcome()
	produced := produceSteadily(t, env.Broker, 6000, 6000)
	time.Sleep(400 * time.Millisecond) // mid-stream
	took, err := p.term(30 * time.Second)
	if err != nil {
		t.Fatalf("exit: %v\n%s", err, p.logs.String())
	}
	t.Logf("stopped in %s", took)
	for _, c := range []*testkit.Client{c1, c2} {
		if code := c.Closed(5 * time.Second); code != 1001 {
			t.Errorf("close code %d, want 1001", code)
		}
	}
	// Every record handled was committed, and nothing was committed unhandled:
	// per partition, the committed offset is one past the last stored record.
	adm := kadm.NewClient(testkit.Producer(t, env.Broker))
	ctx := context.Background()
	committed, err := adm.FetchOffsets(ctx, "SIGNAL_NOTIF_CONSUMER_GROUP")
	if err != nil {
		t.Fatal(err)
	}
	for part := int32(0); part < 4; part++ {
		var last int64 = -1
		env.Store.Pool.QueryRow(ctx, `SELECT coalesce(max(source_offset), -1) FROM notifications WHERE source_partition = $1`, part).Scan(&last)
		c, ok := committed.Lookup(testkit.Topic, part)
		at := int64(0)
		if ok {
			at = c.At
		}
		if at != last+1 {
			t.Errorf("partition %d: committed %d, last stored offset %d", part, at, last)
		}
	}
	groups, err := adm.DescribeGroups(ctx, "SIGNAL_NOTIF_CONSUMER_GROUP")
	if err != nil {
		t.Fatal(err)
	}
	if g := groups["SIGNAL_NOTIF_CONSUMER_GROUP"]; len(g.Members) != 0 {
		t.Errorf("the group still has %d member(s) after a graceful stop: it must leave, not time out", len(g.Members))
	}
	if !strings.Contains(p.logs.String(), "signal stopped") {
		t.Errorf("no orderly stop in the log:\n%s", p.logs.String())
	}
	<-produced
	// A restart picks up exactly where the stop left off.
	p2 := startServe(t, env, "SIGNAL_KAFKA_BATCH_SIZE=200")
	waitCaughtUp(t, env.Broker, 30*time.Second)
	p2.term(30 * time.Second)
	checkExactlyOnce(t, env, 6000)
}
