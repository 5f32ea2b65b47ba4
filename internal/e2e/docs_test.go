package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReliabilityDocNamesRealTests keeps docs/reliability.md honest: every
// test it cites as proof exists, in the package it names.
func TestReliabilityDocNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile("../../docs/reliability.md")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile("`([a-z0-9]+)/((?:Test|Fuzz)[A-Za-z0-9_]+)`").FindAllStringSubmatch(string(doc), -1)
	if len(refs) < 30 {
		t.Fatalf("only %d test references found: the pattern or the doc changed", len(refs))
	}
	for _, r := range refs {
		pkg, name := r[1], r[2]
		files, _ := filepath.Glob(filepath.Join("..", pkg, "*_test.go"))
		found := false
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if strings.Contains(string(b), "func "+name+"(") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("docs/reliability.md cites %s/%s, which does not exist", pkg, name)
		}
	}
}
