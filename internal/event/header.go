package event

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

// Header is one Kafka record header. Kafka calls its key a string, but the
// protocol carries any bytes, and a producer may send a key that is not
// UTF-8 or holds NUL, which PostgreSQL cannot store as text or jsonb.
type Header struct {
	Key   string
	Value []byte
}

// headerJSON is a header as dead letters store it and the CLI prints it:
// {"key":"…","value":"<base64>"}, or {"keyBase64":"…","value":"<base64>"}
// when the key is not text that jsonb can hold (invalid UTF-8, NUL). Both
// keep the bytes exactly, so a replay sends back what the producer sent.
type headerJSON struct {
	Key       *string `json:"key,omitempty"`
	KeyBase64 *string `json:"keyBase64,omitempty"`
	Value     []byte  `json:"value"`
}

// MarshalJSON writes the key as text when jsonb can hold it, as base64
// otherwise.
func (h Header) MarshalJSON() ([]byte, error) {
	j := headerJSON{Value: h.Value}
	if IsStorableText(h.Key) {
		j.Key = &h.Key
	} else {
		b := base64.StdEncoding.EncodeToString([]byte(h.Key))
		j.KeyBase64 = &b
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads either form of MarshalJSON.
func (h *Header) UnmarshalJSON(b []byte) error {
	var j headerJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	switch {
	case j.KeyBase64 != nil:
		k, err := base64.StdEncoding.DecodeString(*j.KeyBase64)
		if err != nil {
			return errors.New("header keyBase64 is not base64")
		}
		h.Key = string(k)
	case j.Key != nil:
		h.Key = *j.Key
	default:
		h.Key = ""
	}
	h.Value = j.Value
	return nil
}

// IsStorableText reports whether PostgreSQL can store s as text (and
// inside jsonb): valid UTF-8 without NUL.
func IsStorableText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// StorableText makes s storable as PostgreSQL text of at most max bytes
// (max > 0): invalid bytes become U+FFFD, NUL becomes "\x00" (four
// characters), and a longer result is cut at a character boundary and ends
// with "…". For texts made from input, such as a dead letter's detail.
func StorableText(s string, max int) string {
	if !IsStorableText(s) {
		s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", `\x00`)
	}
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if cut <= 0 {
		return ""
	}
	return s[:cut] + ellipsis
}
