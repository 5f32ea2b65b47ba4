package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/daemon"
	"github.com/signal-notify/signal/internal/leakcheck"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(leakcheck.After(pgtest.Main(m))) }

// logBuffer collects a daemon's log.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func get(url string) int {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The graceful stop of a real instance, under load, observed from outside
// at each step: readiness fails first, the consumer commits what it stored,
// HTTP stops, then clients are closed, then the instance unregisters, then
// the pool closes.
func TestShutdownGoesStepByStepInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDatabase(t)
	broker := testkit.Broker(t)
	cfg := testkit.Config(t, broker, db)
	cfg.Kafka.ResetOffset = "earliest"
	cfg.WebSocket.CloseWindow = 200 * time.Millisecond
	watch, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	count := func(sql string, args ...any) int {
		var n int
		if err := watch.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Errorf("%s: %v", sql, err)
		}
		return n
	}
	poolConns := func() int {
		return count(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'signal'`)
	}
	adm := kadm.NewClient(testkit.Producer(t, broker))

	var (
		info  daemon.Info
		ws    *testkit.Client
		steps []string
	)
	checks := map[string]func(){
		daemon.StepDraining: func() {
			if code := get("http://" + info.HTTPAddr + "/readyz"); code != http.StatusServiceUnavailable {
				t.Errorf("draining: /readyz %d, want 503", code)
			}
		},
		daemon.StepConsumerStopped: func() {
			if code := get("http://" + info.HTTPAddr + "/readyz"); code != http.StatusServiceUnavailable {
				t.Errorf("consumer stopped: /readyz %d, want 503 from a server still up", code)
			}
			committed, err := adm.FetchOffsets(ctx, cfg.Kafka.GroupID)
			if err != nil {
				t.Errorf("fetch offsets: %v", err)
				return
			}
			var partitions []int32
			committed.Each(func(o kadm.OffsetResponse) { partitions = append(partitions, o.Partition) })
			if len(partitions) == 0 {
				t.Error("consumer stopped: nothing committed")
			}
			for _, p := range partitions {
				last := count(`SELECT coalesce(max(source_offset), -1) FROM notifications WHERE source_partition = $1`, p)
				if c, _ := committed.Lookup(testkit.Topic, p); c.At != int64(last)+1 {
					t.Errorf("consumer stopped: partition %d committed %d, last stored offset %d", p, c.At, last)
				}
			}
			if ws.IsClosed() {
				t.Error("consumer stopped: the WebSocket client is already closed")
			}
		},
		daemon.StepHTTPStopped: func() {
			if c, err := net.DialTimeout("tcp", info.HTTPAddr, time.Second); err == nil {
				c.Close()
				t.Error("http stopped: a new connection is still accepted")
			}
			if ws.IsClosed() {
				t.Error("http stopped: the WebSocket client is already closed")
			}
		},
		daemon.StepClientsClosed: func() {
			if code := ws.Closed(5 * time.Second); code != 1001 {
				t.Errorf("clients closed: close code %d, want 1001", code)
			}
			if n := count(`SELECT count(*) FROM instances WHERE id = $1`, info.InstanceID); n != 1 {
				t.Errorf("clients closed: the instance is registered %d times, want still 1", n)
			}
		},
		daemon.StepRelayStopped: func() {
			if n := count(`SELECT count(*) FROM instances WHERE id = $1`, info.InstanceID); n != 0 {
				t.Error("relay stopped: the instance is still registered")
			}
			if poolConns() == 0 {
				t.Error("relay stopped: the pool is already closed")
			}
		},
		daemon.StepPoolClosed: func() {
			deadline := time.Now().Add(10 * time.Second)
			for poolConns() > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := poolConns(); n > 0 {
				t.Errorf("pool closed: %d connections left", n)
			}
		},
	}

	var logs logBuffer
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan daemon.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(runCtx, daemon.Options{
			Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			OnReady: func(i daemon.Info) { ready <- i },
			OnShutdown: func(step string) {
				steps = append(steps, step)
				if check, ok := checks[step]; ok {
					check()
				} else {
					t.Errorf("unknown step %q", step)
				}
			},
		})
	}()
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("serve did not start: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start within 30s")
	}
	testkit.Eventually(t, 30*time.Second, "readiness", func() bool { return get("http://"+info.HTTPAddr+"/readyz") == 200 })
	ws = testkit.Dial(t, "ws://"+info.HTTPAddr+"/socket/websocket", testkit.Token(t, "r1"))
	ws.Welcome()

	// Records keep arriving while the instance stops.
	producer := testkit.Producer(t, broker)
	producing, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; producing.Err() == nil; i++ {
			var recs []*kgo.Record
			for j := range 50 {
				recs = append(recs, &kgo.Record{Key: []byte("org-1"), Value: testkit.Message("users", []string{fmt.Sprintf("r%d", (i*50+j)%10)}, nil)})
			}
			_ = producer.ProduceSync(producing, recs...).FirstErr()
		}
	}()
	testkit.Eventually(t, 30*time.Second, "rows to be stored", func() bool {
		return count(`SELECT count(*) FROM notifications`) > 500
	})

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("Run did not return 60s after its context ended:\n%s", logs.String())
	}
	stopProducing()
	<-produced
	want := []string{daemon.StepDraining, daemon.StepConsumerStopped, daemon.StepHTTPStopped, daemon.StepClientsClosed, daemon.StepRelayStopped, daemon.StepPoolClosed}
	if strings.Join(steps, " → ") != strings.Join(want, " → ") {
		t.Errorf("steps %q, want %q", steps, want)
	}
	if !strings.Contains(logs.String(), "signal stopped") {
		t.Errorf("no final log line:\n%s", logs.String())
	}
}

// running is a daemon.Run in progress.
type running struct {
	done chan struct{}
	err  error
}

// wait returns Run's error once it returned, or ended=false after timeout.
func (r *running) wait(timeout time.Duration) (ended bool, err error) {
	select {
	case <-r.done:
		return true, r.err
	case <-time.After(timeout):
		return false, nil
	}
}

// pprof is bound before anything else starts, so a start that hangs (here:
// a database that accepts connections and never answers) can be profiled;
// and it refuses a public address unless allowed.
func TestPprofIsBoundFirstAndOnLoopbackOnly(t *testing.T) {
	blackhole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blackhole.Close()
	go func() {
		for {
			c, err := blackhole.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	hangingDB := "postgres://postgres:x@" + blackhole.Addr().String() + "/signal?sslmode=disable"

	start := func(t *testing.T, pprofAddr string, allowPublic bool) (*running, context.CancelFunc, *logBuffer) {
		cfg := testkit.Config(t, "127.0.0.1:1", hangingDB)
		cfg.Debug.PprofAddr = pprofAddr
		cfg.Debug.PprofAllowPublic = allowPublic
		ctx, cancel := context.WithCancel(context.Background())
		logs := &logBuffer{}
		r := &running{done: make(chan struct{})}
		go func() {
			r.err = daemon.Run(ctx, daemon.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			close(r.done)
		}()
		t.Cleanup(func() {
			cancel()
			if ok, _ := r.wait(30 * time.Second); !ok {
				t.Error("Run did not return after its context ended")
			}
		})
		return r, cancel, logs
	}

	t.Run("a start that hangs can be profiled", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		done, _, logs := start(t, addr, false)
		var stacks string
		testkit.Eventually(t, 10*time.Second, "pprof to show the start waiting for the database", func() bool {
			if ended, err := done.wait(0); ended {
				t.Fatalf("Run returned: %v\n%s", err, logs.String())
			}
			resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=2")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			stacks = b.String()
			// pprof may answer before the start has reached the database.
			return resp.StatusCode == 200 && strings.Contains(stacks, "store.Open")
		})
		if !strings.Contains(stacks, "store.Open") {
			t.Errorf("the goroutine profile does not show the start waiting for the database:\n%.2000s", stacks)
		}
	})

	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "example.com:6060"} {
		t.Run("refuses "+addr, func(t *testing.T) {
			done, _, _ := start(t, addr, false)
			ended, err := done.wait(10 * time.Second)
			if !ended {
				t.Fatal("Run did not refuse within 10s")
			}
			if err == nil || !strings.Contains(err.Error(), "debug.pprof_addr") || !strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), "debug.pprof_allow_public") {
				t.Errorf("Run = %v, want a refusal naming the key, loopback and the override", err)
			}
		})
	}

	t.Run("a public address when allowed", func(t *testing.T) {
		done, cancel, logs := start(t, "0.0.0.0:0", true)
		testkit.Eventually(t, 10*time.Second, "pprof to be listening", func() bool { return strings.Contains(logs.String(), "pprof listening") })
		if ended, err := done.wait(0); ended {
			t.Fatalf("Run returned before its context ended: %v", err)
		}
		cancel()
		if ended, err := done.wait(30 * time.Second); !ended || (err != nil && strings.Contains(err.Error(), "pprof")) {
			t.Errorf("Run = %v (ended %v)", err, ended)
		}
	})
}
