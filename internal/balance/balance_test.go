package balance

import "testing"

func TestShed(t *testing.T) {
	tests := []struct {
		name   string
		counts map[string]int
		self   string
		want   int
	}{
		{"alone", map[string]int{"a": 5000}, "a", 0},
		{"balanced", map[string]int{"a": 5000, "b": 5100, "c": 4900}, "a", 0},
		{"a restart left c empty: the full ones shed 5 % a round", map[string]int{"a": 7500, "b": 7500, "c": 0}, "a", 375},
		{"the empty one sheds nothing", map[string]int{"a": 7500, "b": 7500, "c": 0}, "c", 0},
		{"one low: the fullest sheds 5 %", map[string]int{"a": 5600, "b": 5000, "c": 3500}, "a", 280},
		{"one low: a little above the average sheds half its excess", map[string]int{"a": 5600, "b": 5000, "c": 3500}, "b", 150},
		{"above the average but nobody is low", map[string]int{"a": 5900, "b": 4600, "c": 4500}, "a", 0},
		{"too few to bother", map[string]int{"a": 40, "b": 0}, "a", 0},
		{"unknown self", map[string]int{"a": 100, "b": 0}, "z", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Shed(tt.counts, tt.self, Options{}); got != tt.want {
				t.Errorf("Shed = %d, want %d", got, tt.want)
			}
		})
	}
}

// Rounds converge: three instances after a restart left one empty reach
// the slack within a few rounds, and clients closed land on a random
// instance (as a load balancer's round robin or least-connections would).
func TestRoundsConverge(t *testing.T) {
	counts := map[string]int{"a": 7500, "b": 7500, "c": 0}
	rounds := 0
	for ; rounds < 100; rounds++ {
		moved := 0
		for _, id := range []string{"a", "b", "c"} {
			n := Shed(counts, id, Options{})
			counts[id] -= n
			moved += n
		}
		if moved == 0 {
			break
		}
		// Reconnections spread over all three, as a round robin would.
		for i := 0; i < moved; i++ {
			counts[[]string{"a", "b", "c"}[i%3]]++
		}
	}
	if rounds >= 30 {
		t.Fatalf("not balanced after %d rounds: %v", rounds, counts)
	}
	for id, n := range counts {
		if n < 4000 || n > 6000 {
			t.Errorf("%s holds %d after %d rounds: %v", id, n, rounds, counts)
		}
	}
}
