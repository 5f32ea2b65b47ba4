package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/launch"
	"github.com/signal-notify/signal/internal/testkit"
)

// complete asks cobra's completion machinery, as a shell does on TAB.
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	out, errOut, code := run(t, append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %v: %d %s", args, code, errOut)
	}
	var values []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, ":") && l != "" { // the last line is the directive
			values = append(values, strings.SplitN(l, "\t", 2)[0])
		}
	}
	return values
}

func TestCompletionKnowsFlagValues(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	serverEnv(t, in)
	t.Setenv("SIGNAL_DATABASE_URL", env.DBURL)
	run(t, "members", "add", "--org", "org-1", "alice", "bob")
	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, "carol", "ops/*"))
	id := c.Welcome()
	c.Send(`{"action":"join","room":"ops/night shift"}`)
	c.Expect("signal/system/joined")

	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"produce", "--scope", ""}, []string{"users", "org", "merchant"}},
		{[]string{"clients", "-o", ""}, []string{"table", "json"}},
		{[]string{"dedupe", "--recipient", "a"}, []string{"alice"}},
		{[]string{"produce", "--recipients", "alice,b"}, []string{"alice,bob"}},
		{[]string{"members", "list", "--org", ""}, []string{"org-1"}},
		{[]string{"send", "--client", ""}, []string{id}},
		{[]string{"send", "--room", "ops/"}, []string{"ops/night shift"}},
		{[]string{"tail", "--room", "signal/notification/b"}, []string{"signal/notification/bob"}},
		{[]string{"deadletters", "list", "--reason", "no_"}, []string{"no_recipients"}},
	} {
		got := strings.Join(complete(t, tt.args...), "|")
		for _, w := range tt.want {
			if !strings.Contains("|"+got+"|", "|"+w+"|") {
				t.Errorf("completing %v gave %q, want %q among them", tt.args, got, w)
			}
		}
	}
}

func TestCompletionFallsBackQuietlyWhenNothingAnswers(t *testing.T) {
	t.Setenv("SIGNAL_DEV_STATE", t.TempDir()+"/dev.json")
	t.Setenv("SIGNAL_SERVER", "http://127.0.0.1:1")
	t.Setenv("SIGNAL_API_KEY", "k")
	t.Setenv("SIGNAL_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	start := time.Now()
	if got := complete(t, "send", "--room", ""); len(got) != 0 {
		t.Errorf("got %v with nothing reachable", got)
	}
	if got := complete(t, "dedupe", "--recipient", ""); len(got) != 0 {
		t.Errorf("got %v with nothing reachable", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("completion took %s with nothing reachable: a shell must not hang on TAB", d)
	}
}

// `source <(signalctl completion bash)` completes in a bash without the
// bash-completion package (issue: Tab said "_get_comp_words_by_ref: command
// not found").
func TestBashCompletionWorksWithoutTheBashCompletionPackage(t *testing.T) {
	bin := signalctl(t)
	script := `source <("$SIGNALCTL" completion bash)
COMP_WORDS=(signalctl deadl); COMP_CWORD=1; COMP_LINE="signalctl deadl"; COMP_POINT=${#COMP_LINE}
__start_signalctl
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := launch.Command("bash", "--norc", "--noprofile", "-c", script)
	cmd.Env = append(os.Environ(), "SIGNALCTL="+bin, "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	// (compopt complains outside a real Tab: this is a simulation.)
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "\ndeadletters") || strings.Contains(string(out), "not found") {
		t.Errorf("completing \"signalctl deadl\" in a plain bash: %v\n%s", err, out)
	}
}
