package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/cli"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/devstate"
	"github.com/signal-notify/signal/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// result is what one signalctl command line produced.
type result struct {
	Stdout string
	Stderr string
	Code   int
}

// runOpts are the streams and context of one command line.
type runOpts struct {
	stdin  string
	inTTY  bool
	outTTY bool
	errTTY bool
	ctx    context.Context
}

// run executes a signalctl command line in-process, stdin empty, no TTY.
func run(t *testing.T, args ...string) result {
	t.Helper()
	return runWith(t, runOpts{}, args...)
}

// runWith executes a signalctl command line with the given streams. Without
// a context of its own a command gets at most a minute, so a hang fails the
// test instead of the whole package.
func runWith(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	ctx := o.ctx
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
	}
	var out, errOut syncBuffer
	io := &cli.IOStreams{
		In: strings.NewReader(o.stdin), Out: &out, ErrOut: &errOut,
		InTTY: o.inTTY, OutTTY: o.outTTY, ErrTTY: o.errTTY, NoColor: true,
	}
	code := cli.Execute(ctx, io, args)
	r := result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
	t.Logf("signalctl %s → exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	return r
}

// wantCode fails the test unless r exited with code.
func (r result) wantCode(t *testing.T, code int) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.Code, code, r.Stdout, r.Stderr)
	}
}

// wantStderr fails the test unless stderr holds every part.
func (r result) wantStderr(t *testing.T, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.Stderr, p) {
			t.Errorf("stderr does not contain %q:\n%s", p, r.Stderr)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a command's goroutines and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// isolate clears every setting that could leak in from the environment and
// points the dev state at a file of the test's own (not created). It
// returns that file's path.
func isolate(t *testing.T) string {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SIGNAL_") && k != pgtest.EnvURL && k != "SIGNAL_TEST_LOG" {
			t.Setenv(k, "")
		}
	}
	for _, f := range config.Fields() {
		if f.Env != "" {
			t.Setenv(f.Env, "")
		}
	}
	t.Setenv(config.EnvConfigFile, "")
	path := filepath.Join(t.TempDir(), "dev-state.json")
	t.Setenv(devstate.EnvPath, path)
	return path
}

// writeFile writes content to a new file in the test's temporary folder.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// consume reads topic from the start until it holds want records, then
// waits a little longer to make sure no more arrive.
func consume(t *testing.T, broker, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	deadline := time.Now().Add(15 * time.Second)
	for len(recs) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fs := cl.PollFetches(ctx)
		cancel()
		recs = append(recs, fs.Records()...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	recs = append(recs, cl.PollFetches(ctx).Records()...)
	cancel()
	if len(recs) != want {
		t.Fatalf("topic %s holds %d records, want %d", topic, len(recs), want)
	}
	return recs
}

// topicRecords is how many records topic holds (0 when it does not exist).
func topicRecords(t *testing.T, broker, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n
}

// decodeJSON decodes s into a value of type T or fails the test.
func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON (%v): %s", err, s)
	}
	return v
}
