package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var testRef = regexp.MustCompile("`([a-z0-9]+)/((?:Test|Fuzz)[A-Za-z0-9_]+)`")

// TestDocsNameRealTests keeps docs/reliability.md and docs/security.md
// honest: every test they cite as proof exists, in the package they name,
// and every threat of docs/security.md cites at least one.
func TestDocsNameRealTests(t *testing.T) {
	docs := []struct {
		path    string
		minRefs int
		// everyRow: each row of the table under this heading must cite a test.
		everyRow string
	}{
		{path: "../../docs/reliability.md", minRefs: 30},
		{path: "../../docs/security.md", minRefs: 25, everyRow: "## Threats"},
	}
	for _, d := range docs {
		t.Run(filepath.Base(d.path), func(t *testing.T) {
			b, err := os.ReadFile(d.path)
			if err != nil {
				t.Fatal(err)
			}
			doc := string(b)
			refs := testRef.FindAllStringSubmatch(doc, -1)
			if len(refs) < d.minRefs {
				t.Fatalf("only %d test references found: the pattern or the doc changed", len(refs))
			}
			for _, r := range refs {
				if !testExists(r[1], r[2]) {
					t.Errorf("%s cites %s/%s, which does not exist", d.path, r[1], r[2])
				}
			}
			if d.everyRow != "" {
				checkEveryRowCitesATest(t, doc, d.everyRow)
			}
		})
	}
}

func testExists(pkg, name string) bool {
	files, _ := filepath.Glob(filepath.Join("..", pkg, "*_test.go"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "func "+name+"(") {
			return true
		}
	}
	return false
}

// checkEveryRowCitesATest reads the table below heading: the last cell of
// each row must cite a test.
func checkEveryRowCitesATest(t *testing.T, doc, heading string) {
	t.Helper()
	_, section, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("no %q section", heading)
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	rows := 0
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "|---") || strings.HasPrefix(line, "| # |") {
			continue
		}
		rows++
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		last := cells[len(cells)-1]
		if !testRef.MatchString(last) {
			t.Errorf("a threat cites no test: %s", line)
		}
	}
	if rows < 20 {
		t.Errorf("only %d threat rows found under %q: the table changed shape", rows, heading)
	}
}

// A runbook is pasted into scripts and non-interactive shells, where a
// command that asks for confirmation refuses to run: every command of the
// docs that deletes (dedupe --apply, deadletters purge) says --yes, as the
// commands' --help examples do (issue 27, item 7).
func TestTheDocsDeletingCommandsRunWithoutATerminal(t *testing.T) {
	deleting := regexp.MustCompile(`signalctl (dedupe [^\n` + "`" + `]*--apply|deadletters purge)[^\n` + "`" + `]*`)
	n := 0
	for _, path := range []string{"../../README.md", "../../docs/operations.md", "../../docs/reliability.md", "../../docs/security.md", "../../docs/design.md"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range deleting.FindAllString(string(b), -1) {
			n++
			if line, _, _ := strings.Cut(cmd, "#"); !regexp.MustCompile(`(^|\s)(--yes|-y)(\s|$)`).MatchString(line) {
				t.Errorf("%s: %q asks for confirmation and fails outside a terminal: add --yes", path, strings.TrimSpace(cmd))
			}
		}
	}
	if n < 2 {
		t.Errorf("only %d deleting commands found in the docs: the pattern or the docs changed", n)
	}
}
