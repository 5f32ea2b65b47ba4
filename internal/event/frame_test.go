package event

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func row(recipient, content, action string, data string) *Row {
	return &Row{
		ID: uuid.New(), RecipientID: recipient, Type: "PAYMENT_SUCCESS", OrganizerID: "org-1",
		Content: content, ActionURL: action, Data: json.RawMessage(data), IsRead: recipient == "u2",
		CreatedAt: time.Date(2026, 11, 27, 9, 40, 53, 610780000, time.UTC), Source: Source{Topic: "t", Offset: 1},
	}
}

func TestFrameBuilderMatchesMarshalFrameByteForByte(t *testing.T) {
	tricky := "quote\" back\\ <b>&amp; \n\t\r\b\f \x01 \u2028\u2029 é ☃ 🎉 \xff\xfe"
	var b FrameBuilder
	for _, r := range []*Row{
		row("u1", "plain", "/payments/p-1", `{"a":1}`),
		row("u2", "plain", "/payments/p-1", `{"a":1}`), // same message, next recipient: shared part reused
		row("u3", tricky, "", `{"k":"v"}`),
		row(tricky, "x", tricky, `{}`),
		{ID: uuid.New(), RecipientID: "u4", Type: "T", Data: json.RawMessage(`{}`), CreatedAt: time.Unix(0, 0)},
		{ID: uuid.New(), RecipientID: "u5", Type: "T", Data: json.RawMessage(`{}`), CreatedAt: time.Unix(0, 0),
			ExpiresAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))},
		{ID: uuid.New(), RecipientID: "u6", Type: "T", Data: json.RawMessage(`{}`), CreatedAt: time.Unix(0, 0),
			GroupKey: "g", Actor: Actor{ID: "a", Name: tricky, Type: "user"}},
		{ID: uuid.New(), RecipientID: "u7", Type: "T", Data: json.RawMessage(`{}`), CreatedAt: time.Unix(0, 0),
			GroupKey: "g", GroupCount: 12, Actors: []Actor{{ID: "b"}, {ID: "a", Name: "A", Type: "user"}}, ExpiresAt: time.Unix(9, 0)},
	} {
		want, err := MarshalFrame(TopicNotificationCreated, r.Room(), r.Payload())
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Frame(r); string(got) != string(want) {
			t.Errorf("frame of %q:\n got %s\nwant %s", r.RecipientID, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "<>&", "\u2028", "\xff", strings.Repeat("é", 10)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	})
}
