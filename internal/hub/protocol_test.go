package hub

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeAction(t *testing.T) {
	tests := []struct {
		name, in, code string
		want           Action
	}{
		{"join", `{"action":"join","room":"a/b c/é"}`, "", Action{Action: "join", Room: "a/b c/é"}},
		{"join with since", `{"action":"join","room":"r","since":"x"}`, "", Action{Action: "join", Room: "r", Since: "x"}},
		{"join with since a position", `{"action":"join","room":"r","since":42}`, "", Action{Action: "join", Room: "r", Since: "42"}},
		{"since a negative number", `{"action":"join","room":"r","since":-1}`, CodeBadRequest, Action{}},
		{"since a fraction", `{"action":"join","room":"r","since":1.5}`, CodeBadRequest, Action{}},
		{"since an exponent", `{"action":"join","room":"r","since":1e3}`, CodeBadRequest, Action{}},
		{"since too large", `{"action":"join","room":"r","since":123456789012345678901}`, CodeBadRequest, Action{}},
		{"since an object", `{"action":"join","room":"r","since":{}}`, CodeBadRequest, Action{}},
		{"leave", `{"action":"leave","room":"r"}`, "", Action{Action: "leave", Room: "r"}},
		{"ping", `{"action":"ping"}`, "", Action{Action: "ping"}},
		{"not JSON", `hello`, CodeBadRequest, Action{}},
		{"a list", `[]`, CodeBadRequest, Action{}},
		{"two objects", `{"action":"ping"}{"action":"ping"}`, CodeBadRequest, Action{}},
		{"unknown field", `{"action":"ping","x":1}`, CodeBadRequest, Action{}},
		{"no action", `{"room":"r"}`, CodeBadRequest, Action{}},
		{"unknown action", `{"action":"dance"}`, CodeUnknownAction, Action{}},
		{"join without room", `{"action":"join"}`, CodeInvalidRoom, Action{}},
		{"room too long", `{"action":"join","room":"` + strings.Repeat("r", MaxRoomBytes+1) + `"}`, CodeInvalidRoom, Action{}},
		{"room with control character", `{"action":"join","room":"a\u0007b"}`, CodeInvalidRoom, Action{}},
		{"leave with since", `{"action":"leave","room":"r","since":"x"}`, CodeBadRequest, Action{}},
		{"ping with room", `{"action":"ping","room":"r"}`, CodeBadRequest, Action{}},
		{"room a number", `{"action":"join","room":5}`, CodeBadRequest, Action{}},
		{"refresh", `{"action":"refresh","token":"a.b.c"}`, "", Action{Action: "refresh", Token: "a.b.c"}},
		{"refresh without a token", `{"action":"refresh"}`, CodeInvalidToken, Action{}},
		{"refresh with a room", `{"action":"refresh","token":"t","room":"r"}`, CodeBadRequest, Action{}},
		{"join with a token", `{"action":"join","room":"r","token":"t"}`, CodeBadRequest, Action{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeAction([]byte(tt.in))
			if tt.code == "" {
				if err != nil || got != tt.want {
					t.Fatalf("DecodeAction = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			var ae *ActionError
			if !errors.As(err, &ae) || ae.Code != tt.code || ae.Message == "" {
				t.Fatalf("err = %v, want code %s", err, tt.code)
			}
		})
	}
}
