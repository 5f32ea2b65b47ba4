package suggest

import "strings"

// Closest returns the candidate nearest to name (case-insensitive edit
// distance, a transposition counting one), or "" when none is near enough
// to be a likely typo: at most a third of name's length, and at most 3.
// A candidate that name is a prefix or an extension of (http.add,
// --recipient) is near as well.
func Closest(name string, candidates []string) string {
	n := strings.ToLower(name)
	best, bestD := "", 1<<30
	limit := min(3, max(1, len([]rune(n))/3))
	for _, c := range candidates {
		l := strings.ToLower(c)
		if l == n {
			return c
		}
		d := distance(n, l)
		if d > limit && !nearByLength(n, l) {
			continue
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// nearByLength: one is the other with a short ending added or cut
// (a plural, a missing suffix).
func nearByLength(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return len(a) >= 4 && strings.HasPrefix(b, a) && len(b)-len(a) <= 3
}

// distance is the optimal string alignment distance of a and b, by rune.
func distance(a, b string) int {
	s, t := []rune(a), []rune(b)
	prev2 := make([]int, len(t)+1)
	prev := make([]int, len(t)+1)
	cur := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(t)]
}
