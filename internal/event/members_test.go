package event_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/signal-notify/signal/internal/event"
)

func TestDecodeMemberChange(t *testing.T) {
	ok := []struct {
		name, value string
		want        string // scope/id/op/ids
	}{
		{"add", `{"scope":"org","scopeId":"org-1","op":"add","recipientIds":["u1","u2"]}`, "org/org-1/add/u1,u2"},
		{"duplicates removed, order kept", `{"scope":"merchant","scopeId":"m","op":"remove","recipientIds":["b","a","b"]}`, "merchant/m/remove/b,a"},
		{"replace with nobody", `{"scope":"org","scopeId":"o","op":"replace","recipientIds":[]}`, "org/o/replace/"},
		{"unknown fields ignored", `{"scope":"org","scopeId":"o","op":"add","recipientIds":["u"],"version":3}`, "org/o/add/u"},
		{"ids with slashes and spaces", `{"scope":"org","scopeId":"a/b c","op":"add","recipientIds":["é/1"]}`, "org/a/b c/add/é/1"},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			c, err := event.DecodeMemberChange([]byte(tc.value))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Scope + "/" + c.ScopeID + "/" + c.Op + "/" + strings.Join(c.RecipientIDs, ","); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if c.RecordKey() != c.Scope+":"+c.ScopeID {
				t.Errorf("RecordKey = %q", c.RecordKey())
			}
		})
	}
	bad := []struct {
		name, value, reason, detail string
	}{
		{"not JSON", `{"scope":`, event.ReasonMalformedJSON, ""},
		{"empty", ``, event.ReasonMalformedJSON, "empty"},
		{"a list", `[1]`, event.ReasonMalformedJSON, "JSON object"},
		{"two objects", `{} {}`, event.ReasonMalformedJSON, "after top-level value"},
		{"no scope", `{"scopeId":"o","op":"add","recipientIds":[]}`, event.ReasonMissingField, "scope is required"},
		{"users scope", `{"scope":"users","scopeId":"o","op":"add","recipientIds":[]}`, event.ReasonInvalidScope, "org or merchant"},
		{"no scope id", `{"scope":"org","op":"add","recipientIds":[]}`, event.ReasonMissingField, "scopeId is required"},
		{"control character in scope id", `{"scope":"org","scopeId":"o\u0007","op":"add","recipientIds":[]}`, event.ReasonInvalidField, "control characters"},
		{"no op", `{"scope":"org","scopeId":"o","recipientIds":[]}`, event.ReasonMissingField, "op is required"},
		{"unknown op", `{"scope":"org","scopeId":"o","op":"merge","recipientIds":[]}`, event.ReasonInvalidField, `"merge"`},
		{"no recipientIds", `{"scope":"org","scopeId":"o","op":"replace"}`, event.ReasonMissingField, "recipientIds is required"},
		{"null recipientIds", `{"scope":"org","scopeId":"o","op":"replace","recipientIds":null}`, event.ReasonMissingField, "recipientIds is required"},
		{"a number among ids", `{"scope":"org","scopeId":"o","op":"add","recipientIds":["u",1]}`, event.ReasonInvalidField, "recipientIds"},
		{"empty id", `{"scope":"org","scopeId":"o","op":"add","recipientIds":["u",""]}`, event.ReasonInvalidField, "recipientIds[1] is required"},
		{"NUL in id", `{"scope":"org","scopeId":"o","op":"add","recipientIds":["u\u0000"]}`, event.ReasonInvalidField, "recipientIds[0] must not contain control characters"},
		{"id too long", `{"scope":"org","scopeId":"o","op":"add","recipientIds":["` + strings.Repeat("x", 257) + `"]}`, event.ReasonInvalidField, "longer than 256 bytes"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := event.DecodeMemberChange([]byte(tc.value))
			var inv *event.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("err = %v, want an InvalidError", err)
			}
			if inv.Reason != tc.reason || !strings.Contains(inv.Detail, tc.detail) {
				t.Errorf("got %s: %s, want %s containing %q", inv.Reason, inv.Detail, tc.reason, tc.detail)
			}
		})
	}
}

func TestPreferencesNormalizeAndMute(t *testing.T) {
	p := event.Preferences{MutedTypes: []string{"B", "A", "B"}, MutedMerchants: []string{"shop"}}
	if err := p.Normalize(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.MutedTypes, ",") != "A,B" || p.MutedOrganizers == nil {
		t.Errorf("normalized = %+v", p)
	}
	cases := []struct {
		typ, org, merchant string
		muted              bool
	}{
		{"A", "o", "", true},
		{"C", "o", "shop", true},
		{"C", "o", "", false},
		{"C", "shop", "", false}, // a merchant id is not an organizer id
	}
	for _, c := range cases {
		if got := p.Mutes(c.typ, c.org, c.merchant); got != c.muted {
			t.Errorf("Mutes(%q, %q, %q) = %v", c.typ, c.org, c.merchant, got)
		}
	}
	tooMany := event.Preferences{MutedOrganizers: make([]string, event.MaxMuted+1)}
	for i := range tooMany.MutedOrganizers {
		tooMany.MutedOrganizers[i] = "o"
	}
	if err := tooMany.Normalize(); err == nil || !strings.Contains(err.Error(), "the most is 200") {
		t.Errorf("too many: %v", err)
	}
	if err := (&event.Preferences{MutedTypes: []string{"a\nb"}}).Normalize(); err == nil || !strings.Contains(err.Error(), "mutedTypes[0]") {
		t.Errorf("control character: %v", err)
	}
}
