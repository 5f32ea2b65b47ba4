package event

import (
	"errors"
	"strings"
	"testing"
)

const validUsers = `{"eventType":"PAYMENT_SUCCESS","recipientScope":"users","actorId":"a1",
 "actor":{"id":"a1","name":"Alice","type":"user"},"organizerId":"org-1",
 "recipientIds":["u1","u2","u1"],"data":{"payment":{"subject":"Ticket"},"amount":12.50},
 "occurredAt":"2026-11-27T09:00:00Z"}`

func TestDecodeAcceptsAValidUsersMessage(t *testing.T) {
	d, err := Decode([]byte(validUsers))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got := strings.Join(d.Recipients, ","); got != "u1,u2" {
		t.Errorf("recipients = %q, want duplicates removed in order: u1,u2", got)
	}
	if got := string(d.CanonicalData); got != `{"amount":12.50,"payment":{"subject":"Ticket"}}` {
		t.Errorf("canonical data = %s", got)
	}
	if d.Occurred.IsZero() || d.Actor.Name != "Alice" {
		t.Errorf("decoded = %+v", d)
	}
}

func TestDecodeRefusesInvalidMessagesWithAReason(t *testing.T) {
	base := func(edit func(s string) string) string { return edit(validUsers) }
	tests := []struct {
		name, value, reason, detail string
	}{
		{"not JSON", `not json`, ReasonMalformedJSON, ""},
		{"a JSON list", `[1,2]`, ReasonMalformedJSON, "JSON object"},
		{"trailing garbage", validUsers + `}`, ReasonMalformedJSON, ""},
		{"empty", ``, ReasonMalformedJSON, ""},
		{"missing eventType", base(func(s string) string { return strings.Replace(s, `"eventType":"PAYMENT_SUCCESS",`, "", 1) }), ReasonMissingField, "eventType"},
		{"empty actorId", base(func(s string) string { return strings.Replace(s, `"actorId":"a1"`, `"actorId":""`, 1) }), ReasonMissingField, "actorId"},
		{"eventType a number", base(func(s string) string { return strings.Replace(s, `"PAYMENT_SUCCESS"`, `7`, 1) }), ReasonInvalidField, "eventType must be a string"},
		{"missing actor", base(func(s string) string {
			return strings.Replace(s, `"actor":{"id":"a1","name":"Alice","type":"user"},`, "", 1)
		}), ReasonMissingField, "actor is required"},
		{"missing actor.name", base(func(s string) string { return strings.Replace(s, `"name":"Alice",`, "", 1) }), ReasonMissingField, "actor.name"},
		{"missing organizerId", base(func(s string) string { return strings.Replace(s, `"organizerId":"org-1",`, "", 1) }), ReasonMissingField, "organizerId"},
		{"bad scope", base(func(s string) string { return strings.Replace(s, `"users"`, `"everyone"`, 1) }), ReasonInvalidScope, `"everyone"`},
		{"missing scope", base(func(s string) string { return strings.Replace(s, `"recipientScope":"users",`, "", 1) }), ReasonMissingField, "recipientScope"},
		{"users without recipients", base(func(s string) string { return strings.Replace(s, `["u1","u2","u1"]`, `[]`, 1) }), ReasonMissingField, "recipientIds"},
		{"empty recipient id", base(func(s string) string { return strings.Replace(s, `["u1","u2","u1"]`, `["u1",""]`, 1) }), ReasonMissingField, "recipientIds[1]"},
		{"recipient id not a string", base(func(s string) string { return strings.Replace(s, `["u1","u2","u1"]`, `["u1",2]`, 1) }), ReasonInvalidField, "recipientIds"},
		{"merchant without merchantId", base(func(s string) string { return strings.Replace(s, `"users"`, `"merchant"`, 1) }), ReasonMissingField, "merchantId"},
		{"data missing", base(func(s string) string {
			return strings.Replace(s, `"data":{"payment":{"subject":"Ticket"},"amount":12.50},`, "", 1)
		}), ReasonMissingField, "data"},
		{"data null", base(func(s string) string {
			return strings.Replace(s, `{"payment":{"subject":"Ticket"},"amount":12.50}`, `null`, 1)
		}), ReasonMissingField, "data"},
		{"data a list", base(func(s string) string {
			return strings.Replace(s, `{"payment":{"subject":"Ticket"},"amount":12.50}`, `[1]`, 1)
		}), ReasonInvalidField, "data must be a JSON object"},
		{"data with NUL", base(func(s string) string { return strings.Replace(s, `"Ticket"`, `"a\u0000b"`, 1) }), ReasonInvalidField, "NUL"},
		{"occurredAt not RFC 3339", base(func(s string) string { return strings.Replace(s, `2026-11-27T09:00:00Z`, `yesterday`, 1) }), ReasonInvalidField, "occurredAt"},
		{"occurredAt missing", base(func(s string) string {
			return strings.Replace(s, `"occurredAt":"2026-11-27T09:00:00Z"`, `"other":1`, 1)
		}), ReasonMissingField, "occurredAt"},
		{"id too long", base(func(s string) string { return strings.Replace(s, `"u2"`, `"`+strings.Repeat("x", MaxIDBytes+1)+`"`, 1) }), ReasonInvalidField, "longer than"},
		{"id with NUL", base(func(s string) string { return strings.Replace(s, `"u2"`, `"u\u00002"`, 1) }), ReasonInvalidField, "NUL"},
		{"recipient id with a tab", base(func(s string) string { return strings.Replace(s, `"u2"`, `"u\t2"`, 1) }), ReasonInvalidField, "control characters"},
		{"organizer id with a newline", base(func(s string) string { return strings.Replace(s, `"org-1"`, `"org\n1"`, 1) }), ReasonInvalidField, "organizerId must not contain control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.value))
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Decode error = %v, want *InvalidError", err)
			}
			if inv.Reason != tt.reason {
				t.Errorf("reason = %q, want %q (%v)", inv.Reason, tt.reason, err)
			}
			if !strings.Contains(inv.Detail, tt.detail) {
				t.Errorf("detail = %q, want it to mention %q", inv.Detail, tt.detail)
			}
		})
	}
}

func TestDecodeChecksTheRecipientLimit(t *testing.T) {
	ids := make([]string, MaxRecipientIDs+1)
	for i := range ids {
		ids[i] = `"u"`
	}
	msg := strings.Replace(validUsers, `["u1","u2","u1"]`, "["+strings.Join(ids, ",")+"]", 1)
	_, err := Decode([]byte(msg))
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Reason != ReasonTooManyRecipients {
		t.Fatalf("err = %v, want %s", err, ReasonTooManyRecipients)
	}
}

func TestDecodeAcceptsOrgAndMerchantScopes(t *testing.T) {
	org := strings.Replace(validUsers, `"users"`, `"org"`, 1)
	org = strings.Replace(org, `"recipientIds":["u1","u2","u1"],`, "", 1)
	if _, err := Decode([]byte(org)); err != nil {
		t.Errorf("org: %v", err)
	}
	merchant := strings.Replace(org, `"org"`, `"merchant"`, 1)
	merchant = strings.Replace(merchant, `"organizerId":"org-1"`, `"organizerId":"org-1","merchantId":"m-1"`, 1)
	d, err := Decode([]byte(merchant))
	if err != nil || d.MerchantID != "m-1" {
		t.Errorf("merchant: %v %+v", err, d)
	}
}

func TestEventKeyIgnoresKeyOrderAndSpacing(t *testing.T) {
	a, _ := Decode([]byte(validUsers))
	b, _ := Decode([]byte(strings.Replace(validUsers, `{"payment":{"subject":"Ticket"},"amount":12.50}`, `{ "amount":12.50, "payment": {"subject":"Ticket"} }`, 1)))
	c, _ := Decode([]byte(strings.Replace(validUsers, `12.50`, `12.5`, 1)))
	if string(a.EventKey()) != string(b.EventKey()) {
		t.Error("same data in another key order must give the same event key")
	}
	if string(a.EventKey()) == string(c.EventKey()) {
		t.Error("different data must give another event key")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(validUsers))
	f.Add([]byte(`{"recipientScope":"merchant"}`))
	f.Add([]byte(`{"data":{"a":"\u0000"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, value []byte) {
		d, err := Decode(value)
		if err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) || inv.Reason == "" {
				t.Fatalf("error %v is not an *InvalidError with a reason", err)
			}
			return
		}
		// A message that passes must satisfy every rule the store relies on.
		if d.EventType == "" || d.ActorID == "" || d.OrganizerID == "" || d.Occurred.IsZero() {
			t.Fatalf("accepted message misses a required field: %+v", d)
		}
		if d.RecipientScope == ScopeUsers && len(d.Recipients) == 0 {
			t.Fatal("accepted a users message without recipients")
		}
		if d.DataValue == nil || len(d.CanonicalData) == 0 || d.CanonicalData[0] != '{' {
			t.Fatalf("accepted data that is not an object: %s", d.CanonicalData)
		}
		if again, err := Decode(mustRemarshal(t, d)); err != nil || string(again.EventKey()) != string(d.EventKey()) {
			t.Fatalf("re-encoding an accepted message changed it: %v", err)
		}
	})
}
