package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// Set at build time with -ldflags "-X github.com/signal-notify/signal/internal/cli.version=…".
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Go      string `json:"go"`
}

func newCmdVersion(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and build date",
		Example: "  signalctl version\n  signalctl version -o json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			v := versionInfo{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
			if output == FormatJSON {
				return writeJSON(g.io.Out, v)
			}
			fmt.Fprintf(g.io.Out, "signalctl %s (commit %s, built %s, %s)\n", v.Version, v.Commit, v.Date, v.Go)
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}
