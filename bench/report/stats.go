// Package report turns the benchmark harness's measurements into
// bench/results/<date>.md and its PNG charts: percentiles, tables of
// figures against their references and targets, the machine description.
package report

import (
	"math"
	"sort"
)

// Latency summarises a sample of latencies in milliseconds.
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted: the smallest value with at least p % of the sample at or below
// it. It returns NaN for an empty sample.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Summarize sorts a copy of ms and returns its summary.
func Summarize(ms []float64) Latency {
	if len(ms) == 0 {
		nan := math.NaN()
		return Latency{P50: nan, P90: nan, P99: nan, Max: nan, Mean: nan}
	}
	s := append([]float64(nil), ms...)
	sort.Float64s(s)
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	return Latency{
		N:    len(s),
		P50:  Percentile(s, 50),
		P90:  Percentile(s, 90),
		P99:  Percentile(s, 99),
		Max:  s[len(s)-1],
		Mean: sum / float64(len(s)),
	}
}

// Ratio is a/b, or NaN when either is not a positive finite number.
func Ratio(a, b float64) float64 {
	if !(a >= 0) || !(b > 0) || math.IsInf(a, 0) || math.IsInf(b, 0) {
		return math.NaN()
	}
	return a / b
}

// quantiles returns up to points (value, cumulative fraction) pairs of the
// sorted sample, evenly spaced in rank, always including the last value:
// a CDF drawn from a sample of any size.
func quantiles(sorted []float64, points int) (xs, ys []float64) {
	n := len(sorted)
	if n == 0 || points < 2 {
		return nil, nil
	}
	step := max(1, n/points)
	for i := step - 1; i < n; i += step {
		xs, ys = append(xs, sorted[i]), append(ys, float64(i+1)/float64(n))
	}
	if xs[len(xs)-1] != sorted[n-1] || ys[len(ys)-1] != 1 {
		xs, ys = append(xs, sorted[n-1]), append(ys, 1)
	}
	return xs, ys
}
