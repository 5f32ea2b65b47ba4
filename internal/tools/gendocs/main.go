// Command gendocs writes signalctl's man pages and shell completion scripts.
// It is a development tool used by release.mk and .goreleaser.yaml; it is not
// shipped.
//
//	go run ./internal/tools/gendocs -man DIR [-gzip] [-version V] [-date UNIX]
//	go run ./internal/tools/gendocs -completions DIR
//
// -man writes DIR/signalctl.1, DIR/signalctl-serve.1, … (with -gzip:
// signalctl.1.gz, …, compressed reproducibly, as Debian packages want them).
// The pages are made with cobra's doc generator from the same command tree
// the binary runs; hidden commands (dev-db) get none. The date in their
// header is -date (Unix seconds), else $SOURCE_DATE_EPOCH, else now;
// release.mk and .goreleaser.yaml pass the commit time so the pages are
// reproducible. Every *.1 and *.1.gz already in DIR is removed first, so a
// removed command leaves no stale page.
//
// -completions writes DIR/signalctl.bash, signalctl.zsh, signalctl.fish and
// signalctl.ps1 (release.mk uses the built binary instead; both give the
// same bytes).
//
// The completion scripts are byte-identical to what `signalctl completion
// <shell>` prints: both come from the same cobra generators with
// descriptions on.
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/signal-notify/signal/internal/cli"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gendocs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	manDir := fs.String("man", "", "write man pages (section 1) into this folder")
	compDir := fs.String("completions", "", "write bash, zsh, fish and powershell completion scripts into this folder")
	version := fs.String("version", "", "version shown in the man pages' footer (default: none)")
	date := fs.Int64("date", 0, "date of the man pages in Unix seconds (default: $SOURCE_DATE_EPOCH, else now)")
	gz := fs.Bool("gzip", false, "gzip the man pages (signalctl.1.gz, …)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *manDir == "" && *compDir == "" {
		fs.Usage()
		return errors.New("nothing to do: give -man DIR and/or -completions DIR")
	}
	if *manDir != "" {
		if err := genMan(*manDir, *version, *date, *gz); err != nil {
			return err
		}
	}
	if *compDir != "" {
		if err := genCompletions(*compDir); err != nil {
			return err
		}
	}
	return nil
}

// newRoot is the command tree as the binary sees it when it runs: cobra adds
// its `completion` command at execution time, so it is added here as well.
func newRoot() *cobra.Command {
	root := cli.NewRootCmd(cli.System())
	root.InitDefaultCompletionCmd()
	return root
}

func genMan(dir, version string, date int64, gz bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, pattern := range []string{"*.1", "*.1.gz"} {
		old, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return err
		}
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	root := newRoot()
	root.DisableAutoGenTag = true
	source := "signalctl"
	if version != "" {
		source += " " + version
	}
	header := &doc.GenManHeader{Section: "1", Source: source, Manual: "Signal Manual"}
	if date != 0 {
		t := time.Unix(date, 0).UTC()
		header.Date = &t
	}
	// GenManTree skips hidden commands and help topics.
	if err := doc.GenManTree(root, header, dir); err != nil {
		return err
	}
	if gz {
		return gzipPages(dir)
	}
	return nil
}

// gzipPages replaces each DIR/*.1 by DIR/*.1.gz, with no name or time in
// the gzip header so that the same page always gives the same bytes.
func gzipPages(dir string) error {
	pages, err := filepath.Glob(filepath.Join(dir, "*.1"))
	if err != nil {
		return err
	}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return err
		}
		if _, err := zw.Write(b); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(p+".gz", buf.Bytes(), 0o644); err != nil {
			return err
		}
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return nil
}

func genCompletions(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root := newRoot()
	gens := []struct {
		file string
		gen  func(io.Writer) error
	}{
		{"signalctl.bash", func(w io.Writer) error { return cli.GenBashCompletion(root, w) }},
		{"signalctl.zsh", root.GenZshCompletion},
		{"signalctl.fish", func(w io.Writer) error { return root.GenFishCompletion(w, true) }},
		{"signalctl.ps1", root.GenPowerShellCompletionWithDesc},
	}
	for _, g := range gens {
		var buf bytes.Buffer
		if err := g.gen(&buf); err != nil {
			return fmt.Errorf("%s: %w", g.file, err)
		}
		if err := os.WriteFile(filepath.Join(dir, g.file), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
