package event

import (
	"testing"
	"time"
)

func TestNotificationIDIsStablePerRecordAndRecipient(t *testing.T) {
	ts := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	src := Source{Topic: "t", Partition: 1, Offset: 42, Timestamp: ts}
	a, b := NotificationID(src, "u1"), NotificationID(src, "u1")
	if a != b {
		t.Fatal("the same record and recipient must give the same id")
	}
	others := []struct {
		name string
		src  Source
		rcpt string
	}{
		{"another recipient", src, "u2"},
		{"another offset", Source{"t", 1, 43, ts}, "u1"},
		{"another partition", Source{"t", 2, 42, ts}, "u1"},
		{"another topic", Source{"t2", 1, 42, ts}, "u1"},
		{"a recreated topic (same offset, new timestamp)", Source{"t", 1, 42, ts.Add(time.Millisecond)}, "u1"},
	}
	for _, o := range others {
		if NotificationID(o.src, o.rcpt) == a {
			t.Errorf("%s gave the same id", o.name)
		}
	}
	if a.Version() != 8 || a.Variant().String() != "RFC4122" {
		t.Errorf("id %s: version %d variant %s, want 8 / RFC4122", a, a.Version(), a.Variant())
	}
	later := NotificationID(Source{"t", 1, 42, ts.Add(time.Second)}, "u1")
	if later.String() <= a.String() {
		t.Errorf("ids must sort by record time: %s then %s", a, later)
	}
}
