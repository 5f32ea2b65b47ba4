package cli_test

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/signal-notify/signal/internal/cli"
)

// TestEveryCommandHasHelpWithExamples walks the command tree: every command
// a user can run says what it does and shows how.
func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || c.Parent() != nil && c.Parent().Name() == "completion" {
			return
		}
		if c.Short == "" {
			t.Errorf("%s has no short description", c.CommandPath())
		}
		if c.Runnable() && c.Example == "" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cli.NewRootCmd(&cli.IOStreams{}))
}

// TestEveryHelpExampleIsAValidCommandLine parses each signalctl command line
// of every --help example as cobra would run it: the command exists, its
// flags do, and its arguments, required flags and flag groups are right
// (issue: "deadletters replay --reason no_recipients" failed on its flag
// group). The README's tour runs for real in internal/e2e.
func TestEveryHelpExampleIsAValidCommandLine(t *testing.T) {
	var examples []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, line := range strings.Split(c.Example, "\n") {
			for _, cl := range commandLines(line) {
				examples = append(examples, c.CommandPath()+": "+cl)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cli.NewRootCmd(&cli.IOStreams{}))
	if len(examples) < 40 {
		t.Fatalf("only %d example command lines found", len(examples))
	}
	for _, ex := range examples {
		where, line, _ := strings.Cut(ex, ": ")
		args := shellWords(line)[1:] // without "signalctl"
		root := cli.NewRootCmd(&cli.IOStreams{Out: io.Discard, ErrOut: io.Discard})
		cmd, rest, err := root.Find(args)
		if err == nil {
			err = cmd.ParseFlags(rest)
		}
		if err == nil {
			err = cmd.ValidateArgs(cmd.Flags().Args())
		}
		if err == nil {
			err = cmd.ValidateRequiredFlags()
		}
		if err == nil {
			err = cmd.ValidateFlagGroups()
		}
		if err != nil {
			t.Errorf("the example %q of %s --help: %v", line, where, err)
		}
	}
}

// commandLines returns the signalctl invocations in one example line (also
// after && or |, and inside $(…)), without their redirections.
func commandLines(line string) []string {
	var out []string
	for {
		i := strings.Index(line, "signalctl ")
		if i < 0 || (i > 0 && !strings.ContainsAny(line[i-1:i], " ($|&")) {
			return out
		}
		rest := line[i:]
		end := len(rest)
		for _, stop := range []string{"&&", " | ", ")", " #", " <<<", " < ", " > ", " 2>"} {
			if j := strings.Index(rest, stop); j >= 0 && j < end {
				end = j
			}
		}
		out = append(out, strings.TrimSpace(rest[:end]))
		line = rest[end:]
	}
}

// shellWords splits a command line like a shell, quotes included.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	in := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}
