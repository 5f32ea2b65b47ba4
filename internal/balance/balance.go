package balance

import "math"

// Options bound one round.
type Options struct {
	// Slack: instances shed while one holds less than (1 − Slack) times
	// the average; those above the average shed (default 0.2).
	Slack float64
	// MaxShare is the most of its own clients an instance closes in one
	// round (default 0.05).
	MaxShare float64
	// Min is the fewest clients an instance keeps before shedding (below
	// it the imbalance is noise; default 50).
	Min int
}

func (o Options) withDefaults() Options {
	if o.Slack <= 0 {
		o.Slack = 0.2
	}
	if o.MaxShare <= 0 {
		o.MaxShare = 0.05
	}
	if o.Min <= 0 {
		o.Min = 50
	}
	return o
}

// Shed returns how many of its clients the instance self should close this
// round, given every live instance's client count (self included).
func Shed(counts map[string]int, self string, o Options) int {
	o = o.withDefaults()
	mine, ok := counts[self]
	if !ok || len(counts) < 2 || mine < o.Min {
		return 0
	}
	total, least := 0, math.MaxInt
	for _, n := range counts {
		total += n
		least = min(least, n)
	}
	avg := float64(total) / float64(len(counts))
	if float64(mine) <= avg || float64(least) >= (1-o.Slack)*avg {
		return 0
	}
	excess := float64(mine) - avg
	step := math.Min(excess/2, o.MaxShare*float64(mine)) // half the excess: the others shed too
	return max(int(step), 1)
}
