package cli

import (
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are a command's standard streams and what they are connected to.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	// Set by System; tests set them directly.
	OutTTY bool
	ErrTTY bool
	InTTY  bool
	// NoColor is true when NO_COLOR is set (https://no-color.org).
	NoColor bool
	// Width is the terminal's width in columns when stdout is one (0:
	// unknown): tables are fitted to it.
	Width int
}

// System returns the process's streams.
func System() *IOStreams {
	_, noColor := os.LookupEnv("NO_COLOR")
	width, _, _ := term.GetSize(int(os.Stdout.Fd()))
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		Width:   width,
		OutTTY:  term.IsTerminal(int(os.Stdout.Fd())),
		ErrTTY:  term.IsTerminal(int(os.Stderr.Fd())),
		InTTY:   term.IsTerminal(int(os.Stdin.Fd())),
		NoColor: noColor || os.Getenv("TERM") == "dumb",
	}
}

// ColorOut reports whether stdout may carry colour and table borders.
func (s *IOStreams) ColorOut() bool { return s.OutTTY && !s.NoColor }

// ColorErr reports whether stderr may carry colour.
func (s *IOStreams) ColorErr() bool { return s.ErrTTY && !s.NoColor }
