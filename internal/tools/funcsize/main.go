// Command funcsize keeps the functions of a tree short enough to hold in
// one's head: it fails on every function (tests aside) longer than -lines
// lines and, given -gocyclo, on every function gocyclo finds over -over,
// unless the allow file lists it. It is a development tool used by
// `make check`; it is not shipped.
//
//	go run ./internal/tools/funcsize -lines 80 -gocyclo BIN -over 20 -allow FILE [dirs]
//
// The allow file lists, one a line, "package function" as gocyclo names
// them (e.g. "event Decode"); # starts a comment. An entry exempts the
// function from both limits. It may hold at most -max-allow entries, so
// the exceptions stay few. An entry no longer over either limit is
// reported, without failing: the file then shrinks in the same change as
// the function.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	maxLines := flag.Int("lines", 80, "longest function allowed, in lines from func to its closing brace")
	gocyclo := flag.String("gocyclo", "", "the gocyclo binary (no cyclomatic check without it)")
	over := flag.Int("over", 20, "highest cyclomatic complexity allowed outside the allow file")
	allowFile := flag.String("allow", "", "file of functions allowed over -over")
	maxAllow := flag.Int("max-allow", 5, "most entries the allow file may hold")
	flag.Parse()
	dirs := flag.Args()
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	failed, err := run(os.Stdout, *maxLines, *gocyclo, *over, *allowFile, *maxAllow, dirs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "funcsize:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// run makes both checks, writes what fails them, and says whether any did.
func run(w io.Writer, maxLines int, gocyclo string, over int, allowFile string, maxAllow int, dirs []string) (bool, error) {
	allowed, err := readAllow(allowFile)
	if err != nil {
		return false, err
	}
	if len(allowed) > maxAllow {
		fmt.Fprintf(w, "%s: %d entries, at most %d allowed\n", allowFile, len(allowed), maxAllow)
		return true, nil
	}
	seen := map[string]bool{}
	long, err := longFuncs(dirs, maxLines)
	if err != nil {
		return false, err
	}
	failed := false
	for _, f := range long {
		seen[f.Key] = true
		if !allowed[f.Key] {
			fmt.Fprintf(w, "%s: %s is %d lines (limit %d)\n", f.Pos, f.Key, f.Lines, maxLines)
			failed = true
		}
	}
	if gocyclo != "" {
		out, err := runGocyclo(gocyclo, over, dirs)
		if err != nil {
			return false, err
		}
		bad, err := judgeCyclo(w, out, over, allowed, seen)
		if err != nil {
			return false, err
		}
		failed = failed || bad
	}
	reportStale(w, allowed, seen)
	return failed, nil
}

// fn is one function found too long.
type fn struct {
	Pos   string // file:line
	Key   string // "package function", as gocyclo names it
	Lines int
}

// longFuncs walks dirs and returns every function of a non-test Go file
// longer than limit lines, in file order.
func longFuncs(dirs []string, limit int) ([]fn, error) {
	var out []fn
	fset := token.NewFileSet()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if name := d.Name(); path != dir && (name == "testdata" || strings.HasPrefix(name, ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			found, err := fileLongFuncs(fset, path, limit)
			out = append(out, found...)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fileLongFuncs parses one file and returns its functions over limit lines.
func fileLongFuncs(fset *token.FileSet, path string, limit int) ([]fn, error) {
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var out []fn
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		start, end := fset.Position(fd.Pos()), fset.Position(fd.End())
		if n := end.Line - start.Line + 1; n > limit {
			key := f.Name.Name + " " + funcName(fd)
			out = append(out, fn{Pos: fmt.Sprintf("%s:%d", path, start.Line), Key: key, Lines: n})
		}
	}
	return out, nil
}

// funcName names a function as gocyclo does: "(*T).M", "T.M" or "F".
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	star := ""
	if s, ok := t.(*ast.StarExpr); ok {
		star, t = "*", s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	recv := "?"
	if id, ok := t.(*ast.Ident); ok {
		recv = id.Name
	}
	if star != "" {
		return fmt.Sprintf("(*%s).%s", recv, fd.Name.Name)
	}
	return recv + "." + fd.Name.Name
}

// runGocyclo runs gocyclo over dirs, tests aside, and returns its output.
func runGocyclo(bin string, over int, dirs []string) (io.Reader, error) {
	args := append([]string{"-over", strconv.Itoa(over), "-ignore", `_test\.go$`}, dirs...)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// gocyclo exits 1 when it found a function over the limit: that is
	// an answer, not a failure; any other failure says so on stderr.
	if err := cmd.Run(); err != nil && (stderr.Len() > 0 || stdout.Len() == 0) {
		return nil, fmt.Errorf("%s: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	return &stdout, nil
}

// judgeCyclo reads gocyclo's output ("N pkg func file:line:col" a line),
// reports what allowed does not cover, and marks in seen what it found.
func judgeCyclo(w io.Writer, r io.Reader, over int, allowed, seen map[string]bool) (bool, error) {
	failed := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 4 {
			continue
		}
		key := fields[1] + " " + fields[2]
		seen[key] = true
		if !allowed[key] {
			fmt.Fprintf(w, "%s: %s has cyclomatic complexity %s (limit %d)\n", fields[3], key, fields[0], over)
			failed = true
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read gocyclo output: %w", err)
	}
	return failed, nil
}

// reportStale notes the allowed functions that no check found over its
// limit any more.
func reportStale(w io.Writer, allowed, seen map[string]bool) {
	var stale []string
	for key := range allowed {
		if !seen[key] {
			stale = append(stale, key)
		}
	}
	sort.Strings(stale)
	for _, key := range stale {
		fmt.Fprintf(w, "note: %s is in the allow file but within the limits: drop it\n", key)
	}
}

// readAllow reads the allow file: "package function" a line, # comments.
// No file means nothing is allowed.
func readAllow(path string) (map[string]bool, error) {
	allowed := map[string]bool{}
	if path == "" {
		return allowed, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read allow file: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if fields := strings.Fields(line); len(fields) >= 2 {
			allowed[fields[0]+" "+fields[1]] = true
		}
	}
	return allowed, nil
}
