package cli_test

import (
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
