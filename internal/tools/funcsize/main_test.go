package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLongFunctionsAreFoundAndTestsAndShortOnesAreNot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	long := "package p\n\ntype T struct{}\n\nfunc (t *T) Long() {\n" + strings.Repeat("\t_ = 1\n", 5) + "}\n\nfunc Short() {}\n"
	for name, src := range map[string]string{"p.go": long, "p_test.go": long} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := longFuncs([]string{dir}, 6)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "p (*T).Long" || got[0].Lines != 7 {
		t.Fatalf("got %+v, want only p (*T).Long at 7 lines", got)
	}
}

func TestCyclomaticOutputPassesOnlyWhatTheAllowFileLists(t *testing.T) {
	t.Parallel()
	out := "36 event Decode internal/event/message.go:122:1\n21 cli printStatus internal/cli/status.go:83:1\n"
	for _, tc := range []struct {
		name    string
		allowed map[string]bool
		failed  bool
		says    string
	}{
		{"nothing allowed", map[string]bool{}, true, "cli printStatus has cyclomatic complexity 21"},
		{"all allowed", map[string]bool{"event Decode": true, "cli printStatus": true}, false, ""},
		{"a stale entry", map[string]bool{"event Decode": true, "cli printStatus": true, "x Gone": true}, false, "note: x Gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w bytes.Buffer
			seen := map[string]bool{}
			failed, err := judgeCyclo(&w, strings.NewReader(out), 20, tc.allowed, seen)
			if err != nil {
				t.Fatal(err)
			}
			reportStale(&w, tc.allowed, seen)
			if failed != tc.failed || !strings.Contains(w.String(), tc.says) {
				t.Fatalf("failed = %v, output %q: want %v and %q", failed, w.String(), tc.failed, tc.says)
			}
		})
	}
}

func TestAllowFileEntriesAreCountedAndCommentsSkipped(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "allow")
	src := "# why\nevent Decode  # in flux\n\ncli produceRun\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	allowed, err := readAllow(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) != 2 || !allowed["event Decode"] || !allowed["cli produceRun"] {
		t.Fatalf("allowed = %v", allowed)
	}
	var w bytes.Buffer
	failed, err := run(&w, 80, "", 20, path, 1, []string{t.TempDir()})
	if err != nil || !failed || !strings.Contains(w.String(), "at most 1") {
		t.Fatalf("run with 2 entries over a cap of 1: failed=%v err=%v out=%q", failed, err, w.String())
	}
}
