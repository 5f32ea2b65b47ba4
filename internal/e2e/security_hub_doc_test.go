package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSecurityHubDocNamesRealTests: every test docs/security-hub.md cites
// exists, in the package it names.
func TestSecurityHubDocNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile("../../docs/security-hub.md")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile("`([a-z0-9]+)/((?:Test|Fuzz)[A-Za-z0-9_]+)`").FindAllStringSubmatch(string(doc), -1)
	if len(refs) < 15 {
		t.Fatalf("only %d test references found: the pattern or the doc changed", len(refs))
	}
	for _, r := range refs {
		found := false
		files, _ := filepath.Glob(filepath.Join("..", r[1], "*_test.go"))
		for _, f := range files {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), "func "+r[2]+"(") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("docs/security-hub.md cites %s/%s, which does not exist", r[1], r[2])
		}
	}
}
