package event

import (
	"encoding/json"
	"sort"
	"strconv"
)

// appendCanonical writes v (as decoded with UseNumber) the way
// encoding/json with SetEscapeHTML(false) does: object keys sorted, no
// insignificant space, numbers as written.
func appendCanonical(dst []byte, v any) ([]byte, bool) {
	return appendJSON(dst, v, nil)
}

// appendJSON is appendCanonical with each number written by number (nil:
// as written).
func appendJSON(dst []byte, v any, number func(string) string) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case bool:
		return strconv.AppendBool(dst, v), true
	case string:
		return appendJSONString(dst, v, false), true
	case json.Number:
		if v == "" || !json.Valid([]byte(v)) {
			return dst, false
		}
		if number != nil {
			return append(dst, number(string(v))...), true
		}
		return append(dst, v...), true
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendJSON(dst, e, number); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k, false)
			dst = append(dst, ':')
			var ok bool
			if dst, ok = appendJSON(dst, v[k], number); !ok {
				return dst, false
			}
		}
		return append(dst, '}'), true
	}
	return dst, false
}
