package cli

import (
	"bufio"
	"fmt"
	"strings"
)

// confirm asks a yes/no question on the terminal; anything but y/yes is no.
func confirm(io *IOStreams, question string) bool {
	fmt.Fprintf(io.ErrOut, "%s [y/N] ", question)
	line, _ := bufio.NewReader(io.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}
