package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/muesli/termenv"
	"github.com/spf13/cobra"
)

// Output formats of listing commands.
const (
	FormatTable = "table"
	FormatJSON  = "json"
)

var outputFormats = []string{FormatTable, FormatJSON}

// addOutputFlag adds -o/--output with completion of its values.
func addOutputFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVarP(dst, "output", "o", FormatTable, "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedValues(outputFormats...))
}

func checkFormat(f string) error {
	if f != FormatTable && f != FormatJSON {
		return usageErrorf("--output must be table or json, got %q", f)
	}
	return nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printTable prints rows under headers: a bordered lipgloss table on a
// terminal (coloured unless NO_COLOR), aligned plain columns otherwise, so
// scripts and pipes get text without escape codes.
func printTable(io *IOStreams, headers []string, rows [][]string) {
	if !io.OutTTY {
		tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(headers, "\t"))
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		tw.Flush()
		return
	}
	r := lipgloss.NewRenderer(io.Out)
	if io.NoColor {
		r.SetColorProfile(termenv.Ascii) // no colour codes
	}
	header := r.NewStyle().Bold(true).Padding(0, 1)
	cell := r.NewStyle().Padding(0, 1)
	t := table.New().
		Border(lipgloss.RoundedBorder()).
		BorderStyle(r.NewStyle().Foreground(lipgloss.Color("8"))).
		Headers(headers...).
		Rows(rows...).
		StyleFunc(func(row, _ int) lipgloss.Style {
			if row == table.HeaderRow {
				if !io.NoColor {
					return header.Foreground(lipgloss.Color("12"))
				}
				return header
			}
			return cell
		})
	fmt.Fprintln(io.Out, t.Render())
}

// styled colours s on stderr when allowed (status words in messages).
func styled(io *IOStreams, color, s string) string {
	if !io.ColorErr() {
		return s
	}
	r := lipgloss.NewRenderer(io.ErrOut)
	return r.NewStyle().Foreground(lipgloss.Color(color)).Render(s)
}

// styledOut colours s on stdout when allowed.
func styledOut(io *IOStreams, color, s string) string {
	if !io.ColorOut() {
		return s
	}
	r := lipgloss.NewRenderer(io.Out)
	return r.NewStyle().Foreground(lipgloss.Color(color)).Render(s)
}
