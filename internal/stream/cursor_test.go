package stream

import "testing"

func TestACursorSendsOnlyTheNextPosition(t *testing.T) {
	tests := []struct {
		name    string
		start   int64
		offers  []int64
		want    []Verdict
		wantPos int64
		live    bool
	}{
		{"in order", 4, []int64{5, 6, 7}, []Verdict{Send, Send, Send}, 7, true},
		{"a repeat is dropped", 4, []int64{5, 5, 4, 6}, []Verdict{Send, Drop, Drop, Send}, 6, true},
		{"a skipped position repairs", 4, []int64{5, 7, 6, 8}, []Verdict{Send, Repair, Drop, Drop}, 5, false},
		{"the first frame after the head may skip too", 0, []int64{2}, []Verdict{Repair}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Cursor
			if c.Start(tt.start, 0, false) {
				t.Fatal("Start asked for a catch-up without reason")
			}
			for i, p := range tt.offers {
				if got := c.Offer(p); got != tt.want[i] {
					t.Errorf("Offer(%d) = %d, want %d", p, got, tt.want[i])
				}
			}
			if c.Pos() != tt.wantPos || c.Live() != tt.live {
				t.Errorf("cursor at %d (live %v), want %d (live %v)", c.Pos(), c.Live(), tt.wantPos, tt.live)
			}
		})
	}
}

func TestFramesOfferedBeforeTheStartAreCaughtUp(t *testing.T) {
	var c Cursor
	if got := c.Offer(9); got != Drop {
		t.Fatalf("a pending cursor sent a frame: %d", got)
	}
	if !c.Start(8, 0, false) {
		t.Fatal("a frame beyond the head came while pending, but Start asked for no catch-up")
	}
	if c.Live() || !c.Catching() {
		t.Fatal("the cursor should be catching")
	}
	// The catch-up reads 9 and finishes at the head.
	if take, hole := c.accept(9); !take || hole {
		t.Fatalf("accept(9) = %v, %v", take, hole)
	}
	if !c.finish(9) || !c.Live() {
		t.Fatal("a catch-up that sent everything seen did not go live")
	}
}

func TestACatchUpGoesLiveOnlyOnceItSentEverythingDroppedMeanwhile(t *testing.T) {
	var c Cursor
	c.Start(3, 0, true)
	c.Offer(7) // dropped while catching, remembered
	for _, p := range []int64{4, 5} {
		c.accept(p)
	}
	if c.finish(5) {
		t.Fatal("went live at 5 although 7 was dropped meanwhile")
	}
	c.accept(6)
	c.accept(7)
	if !c.finish(7) {
		t.Fatal("did not go live after sending 7")
	}
	if got := c.Offer(8); got != Send {
		t.Fatalf("Offer(8) after going live = %d, want Send", got)
	}
}

func TestAcceptKnowsTheFloor(t *testing.T) {
	tests := []struct {
		name       string
		pos, floor int64
		next       int64
		take, hole bool
	}{
		{"dense: next", 10, 0, 11, true, false},
		{"dense: a hole", 10, 0, 12, false, true},
		{"dense: sent already", 10, 0, 9, false, false},
		{"below the floor: any later position", 1000, 5000, 4321, true, false},
		{"below the floor: the first dense one", 1000, 5000, 5001, true, false},
		{"below the floor: a hole after the floor", 1000, 5000, 5002, false, true},
		{"at the floor: dense", 5000, 5000, 5001, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Cursor{pos: tt.pos, floor: tt.floor, state: catching}
			take, hole := c.accept(tt.next)
			if take != tt.take || hole != tt.hole {
				t.Errorf("accept(%d) = %v, %v; want %v, %v", tt.next, take, hole, tt.take, tt.hole)
			}
		})
	}
}

func TestAStoppedCursorTakesNothing(t *testing.T) {
	var c Cursor
	c.Start(1, 0, false)
	c.Stop()
	if got := c.Offer(2); got != Drop {
		t.Errorf("Offer after Stop = %d", got)
	}
	if c.Start(5, 0, true) || !c.Stopped() {
		t.Error("a stopped cursor started again")
	}
}
