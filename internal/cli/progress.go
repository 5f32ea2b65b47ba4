package cli

import (
	"github.com/schollz/progressbar/v3"
)

// progress is a bar on stderr when it is a terminal, silent otherwise.
type progress struct {
	bar *progressbar.ProgressBar
}

func newProgress(io *IOStreams, total int, what string) *progress {
	if !io.ErrTTY || total <= 1 {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(io.ErrOut),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("msg"),
		progressbar.OptionThrottle(100e6),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionEnableColorCodes(!io.NoColor),
	)}
}

func (p *progress) Add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

func (p *progress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// Set moves the bar to n done.
func (p *progress) Set(n int) {
	if p.bar != nil {
		_ = p.bar.Set(n)
	}
}
