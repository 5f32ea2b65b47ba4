package cli_test

import (
	"regexp"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		isolate(t)
		r := run(t, "version")
		r.wantCode(t, 0)
		want := regexp.MustCompile(`^signalctl \S+ \(commit \S+, built \S+, ` + regexp.QuoteMeta(runtime.Version()) + `\)\n$`)
		if !want.MatchString(r.Stdout) {
			t.Errorf("stdout = %q, want signalctl V (commit C, built D, GO)", r.Stdout)
		}
		if r.Stderr != "" {
			t.Errorf("stderr = %q, want nothing", r.Stderr)
		}
	})
	t.Run("json", func(t *testing.T) {
		isolate(t)
		r := run(t, "version", "-o", "json")
		r.wantCode(t, 0)
		got := decodeJSON[map[string]any](t, r.Stdout)
		if len(got) != 4 {
			t.Errorf("keys %v, want version, commit, date, go", got)
		}
		for _, k := range []string{"version", "commit", "date", "go"} {
			if s, ok := got[k].(string); !ok || s == "" {
				t.Errorf("%s = %v, want a non-empty string", k, got[k])
			}
		}
		if got["go"] != runtime.Version() {
			t.Errorf("go = %v, want %s", got["go"], runtime.Version())
		}
		// The text form says the same.
		text := run(t, "version").Stdout
		if !strings.HasPrefix(text, "signalctl "+got["version"].(string)+" (commit "+got["commit"].(string)+", built "+got["date"].(string)) {
			t.Errorf("text %q disagrees with json %v", text, got)
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		isolate(t)
		r := run(t, "version", "-o", "yaml")
		r.wantCode(t, 2)
		r.wantStderr(t, `--output must be table or json, got "yaml"`)
		if r.Stdout != "" {
			t.Errorf("stdout = %q, want nothing", r.Stdout)
		}
	})
}
