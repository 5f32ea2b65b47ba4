// Command vulncheck runs govulncheck against a local copy of the Go
// vulnerability database and fails on every vulnerability the code calls
// that the accept file does not list. It is a development tool used by
// `make check`; it is not shipped.
//
//	go run ./internal/tools/vulncheck -govulncheck BIN -db DIR -accept FILE [packages]
//
// DIR is a folder of OSV files (golang.org/x/vulndb's data/osv, from the Go
// module proxy: no other network is needed, and the result changes only
// when the pin does). The accept file lists, one a line, "ID reason" for
// vulnerabilities known and not fixable here yet (those of the standard
// library of the machines' Go); # starts a comment. An accepted ID that is
// no longer found is reported, so the list does not outlive its reasons.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
)

func main() {
	bin := flag.String("govulncheck", "govulncheck", "the govulncheck binary")
	db := flag.String("db", "", "folder of OSV files (the vulnerability database)")
	acceptFile := flag.String("accept", "", "file of accepted vulnerability IDs")
	flag.Parse()
	if *db == "" {
		fmt.Fprintln(os.Stderr, "vulncheck: -db is required")
		os.Exit(2)
	}
	accepted, err := readAccept(*acceptFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(2)
	}
	pkgs := flag.Args()
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	var out bytes.Buffer
	cmd := exec.Command(*bin, append([]string{"-db", "file://" + *db, "-format", "json"}, pkgs...)...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck: govulncheck:", err)
		os.Exit(2)
	}
	called, err := calledVulns(&out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(2)
	}
	os.Exit(judge(os.Stdout, called, accepted))
}

// finding is what a called vulnerability says: where, and the fix.
type finding struct {
	ID, Module, Fixed string
}

// calledVulns reads govulncheck's JSON stream and returns the
// vulnerabilities some code of ours calls (a finding whose trace starts at
// a function), by ID.
func calledVulns(r io.Reader) (map[string]finding, error) {
	type frame struct {
		Module   string `json:"module"`
		Function string `json:"function"`
	}
	var msg struct {
		Finding *struct {
			OSV          string  `json:"osv"`
			FixedVersion string  `json:"fixed_version"`
			Trace        []frame `json:"trace"`
		} `json:"finding"`
	}
	out := map[string]finding{}
	dec := json.NewDecoder(r)
	for {
		msg.Finding = nil
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("govulncheck's output: %w", err)
		}
		f := msg.Finding
		if f == nil || len(f.Trace) == 0 || f.Trace[0].Function == "" {
			continue // a module or package that is imported, not a call
		}
		out[f.OSV] = finding{ID: f.OSV, Module: f.Trace[0].Module, Fixed: f.FixedVersion}
	}
}

// readAccept reads "ID reason" lines.
func readAccept(path string) (map[string]string, error) {
	out := map[string]string{}
	if path == "" {
		return out, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, " ")
		if strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: %s has no reason", path, n, id)
		}
		out[id] = strings.TrimSpace(reason)
	}
	return out, sc.Err()
}

// judge prints the findings and returns the exit status: 1 when a called
// vulnerability is not accepted or an accepted one is no longer found.
func judge(w io.Writer, called map[string]finding, accepted map[string]string) int {
	ids := make([]string, 0, len(called))
	for id := range called {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	status := 0
	for _, id := range ids {
		f := called[id]
		if reason, ok := accepted[id]; ok {
			fmt.Fprintf(w, "accepted %s in %s (fixed in %s): %s\n", id, f.Module, f.Fixed, reason)
			continue
		}
		fmt.Fprintf(w, "VULNERABLE %s in %s, called by this code: fixed in %s (details: govulncheck -db file://... -show verbose)\n", id, f.Module, f.Fixed)
		status = 1
	}
	var stale []string
	for id := range accepted {
		if _, ok := called[id]; !ok {
			stale = append(stale, id)
		}
	}
	sort.Strings(stale)
	for _, id := range stale {
		fmt.Fprintf(w, "%s is accepted but no longer found: remove it from the accept file\n", id)
		status = 1
	}
	if status == 0 {
		fmt.Fprintf(w, "vulncheck: no vulnerability called by this code besides %d accepted\n", len(accepted))
	}
	return status
}
