package event

import (
	"reflect"
	"strings"
	"testing"
)

func TestFastWireTakesTheUsualShapeAndLeavesTheRest(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		fast     bool
	}{
		{"valid users message", validUsers, true},
		{"escapes and unicode", `{"eventType":"A\u00e9\n\"\\\/","data":{"k":["x",1.5e3,-0,true,false,null,{}]},"actor":null}`, true},
		{"unknown keys skipped", `{"extra":{"deep":[1,2,{"x":null}]},"eventType":"A"}`, true},
		{"duplicate data: last wins", `{"data":{"a":1},"data":{"b":2}}`, true},
		{"key differing only in case", `{"EventType":"A"}`, false},
		{"non-ASCII key that may fold", `{"ſcope":1}`, false},
		{"repeated actor (merged by encoding/json)", `{"actor":{"id":"a"},"actor":{"name":"n"}}`, false},
		{"number where a string belongs", `{"eventType":7}`, false},
		{"invalid UTF-8", "{\"eventType\":\"\xff\"}", false},
		{"lone surrogate escape", `{"eventType":"\ud800"}`, false},
		{"trailing data", `{} {}`, false},
		{"leading zero", `{"data":{"n":01}}`, false},
		{"top-level list", `[]`, false},
		{"deep nesting", `{"data":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w wire
			if got := fastWire([]byte(tt.in), &w); got != tt.fast {
				t.Fatalf("fastWire = %v, want %v", got, tt.fast)
			}
		})
	}
}

// FuzzFastWire checks the fast parser against encoding/json: whenever it
// answers, encoding/json must accept the input and decode the same.
func FuzzFastWire(f *testing.F) {
	for _, s := range []string{validUsers, `{"data":{"a":[1,"b",null]}}`, `{"eventType":"x","eventType":"y"}`, `{"recipientIds":["a",null]}`, `{"actor":{"ID":"x"}}`,
		`{"eventId":"e-1","expiresAt":"2026-12-01T00:00:00Z","groupKey":null}`, `{"GroupKey":"g"}`, `{"eventId":7}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast wire
		if !fastWire(b, &fast) {
			return
		}
		var slow wire
		if err := slowWire(b, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path decoded %q as %#v, encoding/json as %#v", b, fast, slow)
		}
	})
}

func FuzzCanonical(f *testing.F) {
	f.Add([]byte(`{"b":1,"a":[true,null,"<&>\u2028"],"c":{"z":1.50,"y":"é"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var w wire
		if slowWire(append(append([]byte(`{"data":`), b...), '}'), &w) != nil {
			return
		}
		m, ok := w.Data.(map[string]any)
		if !ok {
			return
		}
		fast, ok := appendCanonical(nil, m)
		if !ok {
			return
		}
		var buf strings.Builder
		enc := jsonEncoder(&buf)
		if err := enc.Encode(m); err != nil {
			return
		}
		if want := strings.TrimSuffix(buf.String(), "\n"); string(fast) != want {
			t.Fatalf("canonical %s, encoding/json %s", fast, want)
		}
	})
}
