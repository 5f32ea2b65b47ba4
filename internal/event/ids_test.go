package event

import (
	"errors"
	"strings"
	"testing"
)

func TestOneRuleForEveryIdentifier(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want string // "" when valid
	}{
		{"a plain id", "u1", ""},
		{"slashes, spaces and accents", "org 1/équipe", ""},
		{"emoji", "user-🦊", ""},
		{"U+0080 is not in the refused range", "a\u0080b", ""},
		{"exactly 256 bytes", strings.Repeat("x", 256), ""},
		{"empty", "", "is required"},
		{"257 bytes", strings.Repeat("x", 257), "longer than 256 bytes"},
		{"NUL", "u2\x00", "control characters (found U+0000 at byte 2)"},
		{"tab", "u\t2", "control characters"},
		{"newline", "u2\n", "control characters"},
		{"DEL", "u\x7f", "found U+007F"},
		{"a lone 0xff byte", "u2\xff", "valid UTF-8"},
		{"a truncated sequence", "u2\xc3", "valid UTF-8"},
		{"an encoded surrogate", "\xed\xa0\x80", "valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateID("recipientId", tt.id)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ValidateID(%q) = %v, want nil", tt.id, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "recipientId") {
				t.Fatalf("ValidateID(%q) = %v, want an error naming recipientId with %q", tt.id, err, tt.want)
			}
			if !errors.Is(err, ErrInvalidID) {
				t.Errorf("%v does not wrap ErrInvalidID", err)
			}
		})
	}
}

func TestRoomsFollowTheRuleWith512Bytes(t *testing.T) {
	if err := ValidateRoom(strings.Repeat("r", 512)); err != nil {
		t.Errorf("512 bytes: %v", err)
	}
	for _, bad := range []string{"", strings.Repeat("r", 513), "ops/\x00", "ops/\xff", "ops\r\n"} {
		if err := ValidateRoom(bad); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidateRoom(%q) = %v, want ErrInvalidID", bad, err)
		}
	}
}
