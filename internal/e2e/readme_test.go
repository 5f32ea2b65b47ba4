package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/devstate"
	"github.com/signal-notify/signal/internal/launch"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

// TestTheREADMETourRunsAsWritten runs the README's tour against a real
// `signalctl serve --dev`, command by command in bash, with the binary on
// PATH, and checks every output the README shows:
//
//   - ```text tour-banner: the lines serve --dev prints;
//   - ```sh tour: commands; a "#   …" line under a command is a line of its
//     output; `signalctl tail` and `signalctl serve` keep running in the
//     background (the README's "other shells") until Ctrl-C at the end;
//   - ```text tour-output: lines the first tail prints (a line starting with
//     two spaces continues the one before).
//
// Outputs are compared by shape: "…" stands for anything, and a run of
// digits or hex digits for any other. The README's addresses 127.0.0.1:8080,
// :8081 and :9092 become free ports of the test.
func TestTheREADMETourRunsAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("runs several processes")
	}
	bin := signalctl(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := fencedBlocks(string(readme))
	var tours, outputs, banner []block
	for _, b := range blocks {
		switch b.info {
		case "sh tour":
			tours = append(tours, b)
		case "text tour-output":
			outputs = append(outputs, b)
		case "text tour-banner":
			banner = append(banner, b)
		}
	}
	if len(tours) < 3 || len(outputs) < 2 || len(banner) != 1 {
		t.Fatalf("README.md has %d tour blocks, %d output blocks, %d banner blocks: the markers changed", len(tours), len(outputs), len(banner))
	}

	httpA, httpB, broker := freeAddr(t), freeAddr(t), freeAddr(t)
	_, brokerPort, _ := strings.Cut(broker, ":")
	dbURL := pgtest.NewEmptyDatabase(t)
	ports := strings.NewReplacer("127.0.0.1:8080", httpA, "127.0.0.1:8081", httpB, "127.0.0.1:9092", broker,
		"postgres://postgres@127.0.0.1:5432/signal?sslmode=disable", dbURL,
		"postgres://postgres:xxxxx@127.0.0.1:5432/signal?sslmode=disable", store.Redact(dbURL))

	// A fresh clone (its go.mod is what marks one) where the reader works,
	// with only the environment a reader has: no SIGNAL_ variable at all,
	// and the README's own `export PATH=$PWD/bin:$PATH`. The commands find
	// the server, the broker, the database and the secrets in the clone's
	// .dev/state.json, as they do after make run (issue 27, item 1).
	clone := t.TempDir()
	if err := os.WriteFile(filepath.Join(clone, "go.mod"), []byte("module "+devstate.Module+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := &tour{t: t, ports: ports, base: "http://" + httpA, dir: clone}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SIGNAL_") || strings.HasPrefix(k, "APP_ENV_") || k == "PATH" || k == "NO_COLOR" {
			continue
		}
		tr.env = append(tr.env, kv)
	}
	tr.env = append(tr.env, "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))

	// `make run`: dev-db up's URL in SIGNAL_DATABASE_URL, then serve --dev
	// (the Makefile's recipe), on the test's ports instead of 8080 and 9092.
	makeRun := append(append([]string(nil), tr.env...), "SIGNAL_DATABASE_URL="+dbURL,
		"SIGNAL_HTTP_ADDR="+httpA, "SIGNAL_KAFKA_EMBEDDED_PORT="+brokerPort)
	serve := tr.backgroundEnv("signalctl serve --dev", makeRun)
	tr.waitReady(httpA, serve)
	for _, line := range banner[0].lines {
		if strings.TrimSpace(line) != "" {
			tr.expectLine(ports.Replace(line), serve.stdout.String(), "serve --dev's banner")
		}
	}
	ds, err := devstate.LoadFile(filepath.Join(clone, ".dev", devstate.File))
	if err != nil || ds == nil {
		t.Fatalf("serve --dev left no dev state in the clone: %v", err)
	}
	tr.apiKey = ds.APIKey

	for _, b := range tours {
		for _, c := range commands(b) {
			tr.run(c)
		}
	}

	// What the first tail printed.
	first := tr.procs[1]
	for _, b := range outputs {
		for _, line := range joinContinued(b.lines) {
			testkit.Eventually(t, 15*time.Second, "the tail to print "+line, func() bool { return matchesALine(line, first.stdout.String()) })
		}
	}
	// The second instance's banner names its own server (issue 15, item 11).
	for _, p := range tr.procs {
		if strings.Contains(p.cmdline, "--http-addr "+httpB) && !strings.Contains(p.stdout.String(), "--server http://"+httpB) {
			t.Errorf("the second instance's banner does not suggest --server http://%s:\n%s", httpB, p.stdout.String())
		}
	}
	// Ctrl-C in every other shell: each stops cleanly with exit 130.
	for i := len(tr.procs) - 1; i >= 0; i-- {
		p := tr.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(40 * time.Second):
			t.Fatalf("%s did not stop within 40s of Ctrl-C", p.cmdline)
		}
		if code := p.cmd.ProcessState.ExitCode(); code != 130 {
			t.Errorf("%s exited %d after Ctrl-C, want 130\n%s", p.cmdline, code, p.stderr.String())
		}
	}
}

type block struct {
	info  string
	lines []string
}

// fencedBlocks returns the README's ``` blocks with their info strings.
func fencedBlocks(md string) []block {
	var out []block
	var cur *block
	for _, line := range strings.Split(md, "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{info: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, line)
		}
	}
	return out
}

// tourCommand is one command of a tour block and the output lines shown
// under it.
type tourCommand struct {
	line   string
	expect []string
}

func commands(b block) []tourCommand {
	var out []tourCommand
	for _, l := range b.lines {
		switch {
		case strings.HasPrefix(l, "#   ") && len(out) > 0:
			out[len(out)-1].expect = append(out[len(out)-1].expect, strings.TrimPrefix(l, "#   "))
		case strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "":
		default:
			out = append(out, tourCommand{line: l})
		}
	}
	return out
}

func joinContinued(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "  ") && len(out) > 0 {
			out[len(out)-1] += strings.TrimSpace(l)
		} else if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

var shapeToken = regexp.MustCompile(`…|[0-9a-f]*[0-9][0-9a-f]*`)

// shape turns a documented line into a regular expression for a line of
// real output: "…" is anything, digits (and hex digits with them) any others.
func shape(doc string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, m := range shapeToken.FindAllStringIndex(doc, -1) {
		b.WriteString(regexp.QuoteMeta(doc[last:m[0]]))
		if doc[m[0]:m[1]] == "…" {
			b.WriteString(".*?")
		} else {
			b.WriteString("[0-9a-f]+")
		}
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(doc[last:]))
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func matchesALine(doc, output string) bool {
	re := shape(strings.TrimRight(doc, " "))
	for _, l := range strings.Split(output, "\n") {
		if re.MatchString(strings.TrimRight(l, " ")) {
			return true
		}
	}
	return false
}

// tour runs the README's commands and keeps its background processes.
type tour struct {
	t      *testing.T
	dir    string // the clone the reader works in
	env    []string
	ports  *strings.Replacer
	base   string // the first instance's URL
	apiKey string
	procs  []*tourProc
}

type tourProc struct {
	cmdline        string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
}

func (tr *tour) expectLine(doc, output, what string) {
	tr.t.Helper()
	if !matchesALine(doc, output) {
		tr.t.Errorf("%s has no line like %q (as %s):\n%s", what, doc, shape(doc), output)
	}
}

// background starts a command that runs until Ctrl-C, as in another shell.
func (tr *tour) background(cmdline string) *tourProc {
	tr.t.Helper()
	return tr.backgroundEnv(cmdline, tr.env)
}

func (tr *tour) backgroundEnv(cmdline string, env []string) *tourProc {
	tr.t.Helper()
	p := &tourProc{cmdline: cmdline, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = launch.Command("bash", "-c", "exec "+cmdline)
	p.cmd.Env, p.cmd.Dir = env, tr.dir
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		tr.t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	tr.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	tr.procs = append(tr.procs, p)
	return p
}

func (tr *tour) waitReady(addr string, p *tourProc) {
	tr.t.Helper()
	testkit.Eventually(tr.t, 60*time.Second, "serve on "+addr+" to be ready", func() bool {
		select {
		case <-p.done:
			tr.t.Fatalf("%s ended: %s\n%s", p.cmdline, p.stdout.String(), p.stderr.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// caughtUp waits until the consumer group has handled every record, as a
// person typing the next command would have.
func (tr *tour) caughtUp() {
	tr.t.Helper()
	testkit.Eventually(tr.t, 30*time.Second, "the consumer to catch up", func() bool {
		var st struct {
			Consumer struct {
				TotalLag int64 `json:"totalLag"`
			} `json:"consumer"`
		}
		return tr.get("/status", &st) == nil && st.Consumer.TotalLag == 0
	})
}

func (tr *tour) get(path string, out any) error {
	req, _ := http.NewRequest("GET", tr.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+tr.apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// run runs one tour command, in the background for tail and serve.
func (tr *tour) run(c tourCommand) {
	t := tr.t
	t.Helper()
	line := tr.ports.Replace(c.line)
	if strings.Contains(line, "<id from clients>") {
		var page struct {
			Clients []struct {
				ID string `json:"clientId"`
			} `json:"clients"`
		}
		if err := tr.get("/socket/websocket/clients", &page); err != nil || len(page.Clients) == 0 {
			t.Fatalf("no client to send to: %v", err)
		}
		line = strings.ReplaceAll(line, "<id from clients>", page.Clients[0].ID)
	}
	switch {
	case strings.HasPrefix(line, "signalctl tail "):
		p := tr.background(line)
		testkit.Eventually(t, 20*time.Second, line+" to join its room", func() bool {
			return strings.Contains(p.stderr.String(), "signal/system/joined")
		})
		return
	case strings.HasPrefix(line, "signalctl serve "):
		p := tr.background(line)
		addr := regexp.MustCompile(`--http-addr (\S+)`).FindStringSubmatch(line)
		if addr == nil {
			t.Fatalf("%s: no --http-addr to wait for", line)
		}
		tr.waitReady(addr[1], p)
		return
	}
	tr.caughtUp()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := launch.CommandContext(ctx, "bash", "-c", line)
	cmd.Env, cmd.Dir = tr.env, tr.dir
	out, err := cmd.CombinedOutput()
	t.Logf("$ %s\n%s", line, out)
	if err != nil {
		t.Fatalf("README command %q failed: %v\n%s", c.line, err, out)
	}
	for _, e := range c.expect {
		tr.expectLine(tr.ports.Replace(e), string(out), "the output of "+c.line)
	}
}
