package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/launch"
	"github.com/signal-notify/signal/internal/pgcluster"
)

// Secrets of every serve the harness starts.
const (
	jwtSecret = "bench-secret-0123456789abcdef-0123456789"
	apiKey    = "bench-api-key-0123456789abcdef"
	topic     = "signal.activity-notification"
)

// env is what every scenario shares: a temporary folder, one durable
// PostgreSQL cluster and the signalctl binary.
type env struct {
	cfg     *config
	dir     string
	pg      *pgcluster.Cluster
	pgVer   string
	bin     string
	mu      sync.Mutex
	cleanup []func()
}

func newEnv(ctx context.Context, cfg *config) (*env, error) {
	bin, err := filepath.Abs(cfg.bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s: %w (build it first: go build -o bin/signalctl ./cmd/signalctl)", cfg.bin, err)
	}
	dir, err := os.MkdirTemp("", "signalbench-")
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, dir: dir, bin: bin}
	logf("temporary folder %s", dir)
	// The data folder must be reachable by the postgres user when running
	// as root: pgcluster hands the tree to it.
	if err := os.Chmod(dir, 0o755); err != nil {
		e.close()
		return nil, err
	}
	start := time.Now()
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "pg"), Durable: true})
	if err != nil {
		e.close()
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	e.pg = pg
	logf("PostgreSQL (durable: fsync on) on port %d in %s", pg.Port, time.Since(start).Round(time.Millisecond))
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		e.close()
		return nil, err
	}
	defer conn.Close(ctx)
	_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&e.pgVer)
	var fsync string
	_ = conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync)
	if fsync != "on" {
		logf("warning: fsync is %q", fsync)
	}
	return e, nil
}

// close stops everything started, in reverse order, then PostgreSQL, and
// removes the temporary folder (unless -keep).
func (e *env) close() {
	e.mu.Lock()
	fns := e.cleanup
	e.cleanup = nil
	e.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	if e.pg != nil {
		if err := e.pg.Stop(); err != nil {
			logf("stop PostgreSQL: %v", err)
		}
		e.pg = nil
	}
	if e.cfg.keep {
		logf("kept %s", e.dir)
		return
	}
	if err := os.RemoveAll(e.dir); err != nil {
		logf("remove %s: %v", e.dir, err)
	}
}

// scoped runs one scenario on an env of its own (the same folder, cluster
// and binary): what it starts is stopped, in reverse order, when it returns.
func (e *env) scoped(ctx context.Context, name string, fn func(context.Context, *env) error) error {
	se := &env{cfg: e.cfg, dir: e.dir, pg: e.pg, bin: e.bin}
	defer func() {
		se.mu.Lock()
		fns := se.cleanup
		se.cleanup = nil
		se.mu.Unlock()
		for i := len(fns) - 1; i >= 0; i-- {
			fns[i]()
		}
	}()
	logf("=== %s", name)
	// Start each scenario from clean buffers: the one before may have
	// left gigabytes of WAL that a checkpoint would write meanwhile.
	se.checkpoint(ctx)
	return fn(ctx, se)
}

func (e *env) onClose(fn func()) {
	e.mu.Lock()
	e.cleanup = append(e.cleanup, fn)
	e.mu.Unlock()
}

// database creates a database and applies Signal's migrations with the
// binary under test (so the schema is exactly the one it expects).
func (e *env) database(ctx context.Context, name string) (string, error) {
	return e.databaseFor(ctx, name, e.bin)
}

// databaseFor is database migrated by bin (a baseline binary has its own
// schema version).
func (e *env) databaseFor(ctx context.Context, name, bin string) (string, error) {
	conn, err := pgx.Connect(ctx, e.pg.URL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	// Dropped when the scenario ends, so that no autovacuum of its tables
	// runs during the next one.
	e.onClose(func() { e.dropDatabase(name) })
	url := e.pg.DatabaseURL(name)
	cmd := launch.CommandContext(ctx, bin, "migrate", "up", "--database-url", url)
	cmd.Env = append(os.Environ(), "SIGNAL_CONFIG=", "NO_COLOR=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("migrate %s: %w\n%s", name, err, out)
	}
	return url, nil
}

// dropDatabase drops a database of this run now.
func (e *env) dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.pg.URL)
	if err != nil {
		logf("drop %s: %v", name, err)
		return
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		logf("drop %s: %v", name, err)
	}
}

// checkpoint forces a checkpoint so a timed phase does not pay for the
// dirty pages of the one before.
func (e *env) checkpoint(ctx context.Context) {
	conn, err := pgx.Connect(ctx, e.pg.URL)
	if err != nil {
		logf("checkpoint: %v", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		logf("checkpoint: %v", err)
	}
}

// server is a `signalctl serve` child process.
type server struct {
	name    string
	proc    *launch.Process
	addr    string
	pprof   string
	logPath string
	start   time.Time
}

// serveOpts configure one serve.
type serveOpts struct {
	name   string
	bin    string // default: the binary under test
	dbURL  string
	broker string
	extra  []string // more environment, KEY=VALUE
}

// serve starts `signalctl serve` and waits until /readyz answers 200.
func (e *env) serve(ctx context.Context, o serveOpts) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &server{name: o.name, addr: addr, logPath: filepath.Join(e.dir, o.name+".log")}
	// Appended: a restarted instance keeps the log of the one before.
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	bin := e.bin
	if o.bin != "" {
		bin = o.bin
	}
	cmd := launch.Command(bin, "serve", "--log-format", "json")
	cmd.Env = launch.Serve{
		DatabaseURL: o.dbURL, Broker: o.broker, Addr: addr, JWTSecret: jwtSecret, APIKey: apiKey,
		DevState: filepath.Join(e.dir, "dev.json"),
	}.Env("SIGNAL_KAFKA_SESSION_TIMEOUT=6s", "SIGNAL_WEBSOCKET_CLOSE_WINDOW=300ms",
		// Thousands of clients come from each loopback address, as from a
		// load balancer: the per-address upgrade rate and connection cap
		// are off.
		"SIGNAL_WEBSOCKET_UPGRADE_RATE=0", "SIGNAL_HTTP_MAX_CONNECTIONS_PER_IP=0")
	if e.cfg.pprofDir != "" {
		if s.pprof, err = freeAddr(); err != nil {
			return nil, err
		}
		cmd.Env = append(cmd.Env, "SIGNAL_DEBUG_PPROF_ADDR="+s.pprof)
	}
	cmd.Env = append(cmd.Env, o.extra...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	s.start = time.Now()
	// The child dies with the harness, whatever way the harness ends.
	if s.proc, err = launch.Start(cmd); err != nil {
		return nil, err
	}
	e.onClose(func() { s.stop() })
	if _, err := s.proc.WaitReady(ctx, s.url()+"/readyz", 60*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("serve %s: %w\n%s", o.name, err, s.logTail(20))
	}
	return s, nil
}

func (s *server) url() string   { return "http://" + s.addr }
func (s *server) wsURL() string { return "ws://" + s.addr + "/socket/websocket" }
func (s *server) pid() int      { return s.proc.Pid() }

// stop sends SIGTERM and waits up to 20 s, then kills.
func (s *server) stop() {
	if st := s.proc.Term(20 * time.Second); st.Killed {
		logf("serve %s did not stop within 20s after SIGTERM: killed it", s.name)
	}
}

// rssKiB is the process's resident set (VmRSS) in KiB.
func (s *server) rssKiB() (float64, error) { return rssKiB(s.pid()) }

func rssKiB(pid int) (float64, error) { return statusKiB(pid, "VmRSS:") }

// statusKiB reads one KiB field (VmRSS:, VmHWM:) of /proc/<pid>/status.
func statusKiB(pid int, key string) (float64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			fields := strings.Fields(v)
			if len(fields) > 0 {
				return strconv.ParseFloat(fields[0], 64)
			}
		}
	}
	return 0, errors.New("no " + key + " in /proc/" + strconv.Itoa(pid) + "/status")
}

// cpuSeconds is the user + system CPU time a process used so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return math.NaN()
	}
	// Fields after the command name (which may hold spaces), 1-based from
	// field 3: utime is field 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return math.NaN()
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return math.NaN()
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// settledRSS waits d, then reads VmRSS every 500 ms for another d and
// returns the smallest reading: the heap after the garbage collector and
// the scavenger have had time to give back what the last burst used.
func (s *server) settledRSS(ctx context.Context, d time.Duration) (float64, error) {
	if err := sleepCtx(ctx, d); err != nil {
		return 0, err
	}
	best := 0.0
	for end := time.Now().Add(d); ; {
		v, err := s.rssKiB()
		if err != nil {
			return 0, err
		}
		if best == 0 || v < best {
			best = v
		}
		if time.Now().After(end) {
			return best, nil
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

func (s *server) logTail(n int) string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// profile saves a CPU profile of the server over d into the pprof folder,
// when the product exposes pprof (debug.pprof_addr) and -pprof-dir is set.
func (s *server) profile(ctx context.Context, d time.Duration, name string) {
	if s.pprof == "" {
		return
	}
	go func() {
		secs := max(1, int(d.Seconds()))
		req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.pprof, secs), nil)
		resp, err := (&http.Client{Timeout: d + 30*time.Second}).Do(req)
		if err != nil {
			logf("pprof %s: %v", name, err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			logf("pprof %s: status %d (does this build expose debug.pprof_addr?)", name, resp.StatusCode)
			return
		}
		path := filepath.Join(globalPprofDir, name+".pprof")
		f, err := os.Create(path)
		if err != nil {
			logf("pprof %s: %v", name, err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err == nil {
			logf("CPU profile of %s saved to %s", s.name, path)
		}
	}()
}

var globalPprofDir string

func httpGet(url string, timeout time.Duration) (int, []byte) {
	cl := &http.Client{Timeout: timeout}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b
}

// httpGetAuth is httpGet with an API key.
func httpGetAuth(url, key string, timeout time.Duration) (int, []byte) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s signalbench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// postgresPIDs are the postmaster and its children (backends, WAL writer,
// checkpointer, autovacuum…).
func (e *env) postgresPIDs() []int { return clusterPIDs(e.pg) }

// clusterPIDs are the postmaster of c and its children.
func clusterPIDs(c *pgcluster.Cluster) []int {
	if c == nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, "data", "postmaster.pid"))
	if err != nil {
		return nil
	}
	master, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		return nil
	}
	pids := []int{master}
	entries, _ := os.ReadDir("/proc")
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + en.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(st[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(master) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cpuMeter measures the CPU used by groups of processes over a period, in
// cores (CPU seconds per second).
type cpuMeter struct {
	start  time.Time
	groups map[string]func() []int
	before map[string]map[int]float64
}

func newCPUMeter(groups map[string]func() []int) *cpuMeter {
	m := &cpuMeter{start: time.Now(), groups: groups, before: map[string]map[int]float64{}}
	for name, pids := range groups {
		m.before[name] = map[int]float64{}
		for _, pid := range pids() {
			m.before[name][pid] = cpuSeconds(pid)
		}
	}
	return m
}

// cores returns each group's average number of busy cores since the start.
// Processes that ended meanwhile are not counted.
func (m *cpuMeter) cores() map[string]float64 {
	el := time.Since(m.start).Seconds()
	out := map[string]float64{}
	for name, pids := range m.groups {
		used := 0.0
		for _, pid := range pids() {
			now := cpuSeconds(pid)
			if math.IsNaN(now) {
				continue
			}
			used += now - m.before[name][pid] // a process born meanwhile counts from zero
		}
		out[name] = used / el
	}
	return out
}
