package hub

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzScanControl feeds arbitrary client bytes to the hand-written frame
// reader of idle connections and checks it against the independent
// decoder: it takes exactly the leading complete, masked, unfragmented
// pings and pongs of at most 125 bytes, with their payloads unmasked, and
// leaves everything else (for gws) untouched.
func FuzzScanControl(f *testing.F) {
	f.Add(maskedFrame(opPing, []byte("hello")))
	f.Add(append(maskedFrame(opPong, nil), maskedFrame(opText, []byte(`{"action":"ping"}`))...))
	f.Add(append(maskedFrame(opPing, bytes.Repeat([]byte("x"), 125)), maskedFrame(opPing, []byte("y"))[:4]...))
	f.Add(appendFrame(nil, opPing, []byte("unmasked")))
	f.Add(append(appendFrame(nil, opPing, []byte("ab")), maskedFrame(opText, []byte("{}"))...))
	f.Add(maskedFrame(opClose, []byte{3, 232}))
	f.Add([]byte{0x89, 0xFE, 0, 2, 1, 2, 3, 4, 5, 6})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got []wsFrame
		n := scanControl(b, func(op byte, payload []byte) {
			got = append(got, wsFrame{op: op, payload: payload})
		})
		if n < 0 || n > len(b) {
			t.Fatalf("took %d of %d bytes", n, len(b))
		}
		// The independent decoder reads the same frames from the same bytes.
		r := bytes.NewReader(b)
		for i := 0; ; i++ {
			before := len(b) - r.Len()
			fr, err := readFrame(r)
			isControl := err == nil && fr.fin && fr.rsv == 0 && fr.masked && (fr.op == opPing || fr.op == opPong) &&
				len(fr.payload) <= 125 && (len(b)-r.Len())-before == 6+len(fr.payload)
			if !isControl {
				if before != n || i != len(got) {
					t.Fatalf("scanControl took %d bytes and %d frames; the decoder sees the first other thing at %d after %d frames", n, len(got), before, i)
				}
				return
			}
			if i >= len(got) || got[i].op != fr.op || !bytes.Equal(got[i].payload, fr.payload) {
				t.Fatalf("frame %d: scanControl %v, decoder %v", i, got, fr)
			}
		}
	})
}

// FuzzDecodeAction: any input is an action that passes the checks or an
// *ActionError with a code and a short message; nothing echoes more than an
// excerpt of the input.
func FuzzDecodeAction(f *testing.F) {
	for _, s := range []string{`{"action":"join","room":"signal/notification/u1","since":"0190d5b2-0000-8000-8000-000000000000"}`, `{"action":"ping"}`, `{"action":"leave","room":"x"}`, `{"action":"refresh","token":"a.b.c"}`, `{}`, `[`, `{"` + string(bytes.Repeat([]byte("é"), 300)) + `":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAction(b)
		if err != nil {
			var ae *ActionError
			if !errors.As(err, &ae) || ae.Code == "" || ae.Message == "" {
				t.Fatalf("error %v is not an *ActionError with a code and a message", err)
			}
			if len(ae.Message) > maxErrorMessage+len("…") || len(ae.Room) > MaxRoomBytes {
				t.Fatalf("the error echoes %d bytes (room %d)", len(ae.Message), len(ae.Room))
			}
			if utf8.Valid(b) && !utf8.ValidString(ae.Message) {
				t.Fatalf("the message of valid input is not UTF-8: %q", ae.Message)
			}
			return
		}
		switch a.Action {
		case ActionJoin, ActionLeave:
			if ValidateRoom(a.Room) != nil || a.Token != "" {
				t.Fatalf("accepted %+v", a)
			}
		case ActionPing:
			if a.Room != "" || a.Since != "" || a.Token != "" {
				t.Fatalf("accepted %+v", a)
			}
		case ActionRefresh:
			if a.Token == "" || a.Room != "" || a.Since != "" {
				t.Fatalf("accepted %+v", a)
			}
		default:
			t.Fatalf("accepted unknown action %q", a.Action)
		}
	})
}
