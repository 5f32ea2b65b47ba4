package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

// drain reads every id of body through idList, as the store would.
func drain(body io.Reader) ([]string, error) {
	l := &idList{dec: json.NewDecoder(&utf8Reader{r: body})}
	var out []string
	for {
		id, err := l.next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, id)
	}
}

func TestIDListStreamsAndChecksEveryID(t *testing.T) {
	ok := []struct{ name, body, want string }{
		{"ids", `{"recipientIds":["u1","u2"]}`, "u1,u2"},
		{"empty list", `{"recipientIds":[]}`, ""},
		{"spaces and a newline at the end", " { \"recipientIds\" : [ \"a\" , \"b\" ] }\n", "a,b"},
		{"escapes and non-ASCII", `{"recipientIds":["\u00e9t\u00e9","日本","a\/b"]}`, "été,日本,a/b"},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			// One byte per read: characters and tokens cut anywhere.
			got, err := drain(iotest.OneByteReader(strings.NewReader(tc.body)))
			if err != nil || strings.Join(got, ",") != tc.want {
				t.Errorf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
	bad := []struct{ name, body, want string }{
		{"not an object", `["u1"]`, "must be a JSON object"},
		{"missing list", `{}`, "recipientIds is required"},
		{"unknown field", `{"ids":["u1"]}`, `unknown field "ids"`},
		{"unknown field after", `{"recipientIds":["u1"],"x":1}`, `unknown field "x"`},
		{"twice", `{"recipientIds":[],"recipientIds":[]}`, "given twice"},
		{"not a list", `{"recipientIds":"u1"}`, "must be a list of strings"},
		{"a number", `{"recipientIds":["u1",2]}`, "recipientIds[1] must be a string"},
		{"null", `{"recipientIds":[null]}`, "recipientIds[0] must be a string"},
		{"empty id", `{"recipientIds":["u1",""]}`, "recipientIds[1] is required"},
		{"control character", `{"recipientIds":["a\u0001"]}`, "must not contain control characters"},
		{"too long", `{"recipientIds":["` + strings.Repeat("x", 257) + `"]}`, "longer than 256 bytes"},
		{"cut short", `{"recipientIds":["u1"`, "ends before"},
		{"trailing object", `{"recipientIds":[]} {}`, "one JSON object"},
		{"bad JSON", `{"recipientIds":[u1]}`, "not valid JSON"},
		{"invalid UTF-8", "{\"recipientIds\":[\"a\xffb\"]}", "valid UTF-8 (invalid byte at offset 19)"},
		{"UTF-8 cut at the end", "{\"recipientIds\":[\"a\xc3", "valid UTF-8"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := drain(iotest.OneByteReader(strings.NewReader(tc.body)))
			var b *badInput
			if !errors.As(err, &b) || !strings.Contains(b.msg, tc.want) {
				t.Errorf("err = %v, want a bad input saying %q", err, tc.want)
			}
		})
	}
	t.Run("a body over the limit is not bad input but too large", func(t *testing.T) {
		w := httptest.NewRecorder()
		body := http.MaxBytesReader(w, io.NopCloser(strings.NewReader(`{"recipientIds":["`+strings.Repeat("a", 100)+`"]}`)), 50)
		_, err := drain(body)
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) {
			t.Errorf("err = %v, want a MaxBytesError", err)
		}
	})
}
