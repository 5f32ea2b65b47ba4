package event

import (
	"strings"
	"testing"
	"time"
)

func TestLifecycleFieldsAreDecodedAndValidated(t *testing.T) {
	base := `{"eventType":"T","recipientScope":"users","recipientIds":["u1"],"actorId":"a",` +
		`"actor":{"id":"a","name":"A","type":"user"},"organizerId":"org-1","data":{},"occurredAt":"2026-11-27T09:40:53Z"`
	for _, tc := range []struct {
		name, extra, err string
		check            func(*Decoded) bool
	}{
		{"none", ``, "", func(d *Decoded) bool { return d.EventID == "" && d.Expires.IsZero() && d.Grouping == "" }},
		{"all", `,"eventId":"pay-42","expiresAt":"2026-12-01T10:00:00+01:00","groupKey":"payments-org-1"`, "",
			func(d *Decoded) bool {
				return d.EventID == "pay-42" && d.Grouping == "payments-org-1" &&
					d.Expires.Equal(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
			}},
		{"nulls are absent", `,"eventId":null,"expiresAt":null,"groupKey":null`, "", func(d *Decoded) bool { return d.EventID == "" }},
		{"empty eventId", `,"eventId":""`, "invalid_field: eventId must not be empty", nil},
		{"eventId with a control character", `,"eventId":"a\tb"`, "invalid_field: invalid identifier: eventId must not contain control", nil},
		{"long groupKey", `,"groupKey":"` + strings.Repeat("g", MaxIDBytes+1) + `"`, "invalid_field: groupKey is longer", nil},
		{"groupKey not a string", `,"groupKey":7`, "invalid_field: groupKey must be a string", nil},
		{"expiresAt not a time", `,"expiresAt":"tomorrow"`, `invalid_field: expiresAt must be an RFC 3339 time, got "tomorrow"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decode([]byte(base + tc.extra + `}`))
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(d) {
				t.Fatalf("decoded %+v, %v", d, err)
			}
		})
	}
}

func TestGroupActorsKeepTheLatestDistinctOnes(t *testing.T) {
	a, b, c, d := Actor{ID: "a"}, Actor{ID: "b"}, Actor{ID: "c"}, Actor{ID: "d"}
	got := GroupActors(a, []Actor{b, a, c, d})
	if len(got) != MaxGroupActors || got[0] != a || got[1] != b || got[2] != c {
		t.Fatalf("actors %v", got)
	}
}
