package event

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// The data of a notification is written in one form wherever it comes
// from: the live push (from the message), a repush or a replay (from the
// row PostgreSQL gives back, whose jsonb has its own key order, spaces and
// number forms), the inbox. That form is the canonical one (keys sorted, no
// space) with each number as PostgreSQL's numeric prints it (1e2 → 100,
// 1.50 stays 1.50, -0 → 0): the only form both sides can reach, since
// jsonb keeps no more of what the producer wrote.

// StoredData returns data (a JSON object or any JSON value, as written by a
// producer or as PostgreSQL's jsonb gives it back) in the form frames carry.
// What does not decode is returned as it is.
func StoredData(data []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return data
	}
	out, ok := appendStored(make([]byte, 0, len(data)), v)
	if !ok {
		return data
	}
	return out
}

// storedObject is the stored form of a decoded object whose canonical form
// is canonical: the same bytes unless a number is written otherwise than
// PostgreSQL prints it.
func storedObject(m map[string]any, canonical []byte) []byte {
	if !hasOtherNumbers(m) {
		return canonical
	}
	if b, ok := appendStored(make([]byte, 0, len(canonical)), m); ok {
		return b
	}
	return canonical
}

func appendStored(dst []byte, v any) ([]byte, bool) {
	return appendJSON(dst, v, pgNumber)
}

func hasOtherNumbers(v any) bool {
	switch v := v.(type) {
	case json.Number:
		return pgNumber(string(v)) != string(v)
	case []any:
		for _, e := range v {
			if hasOtherNumbers(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range v {
			if hasOtherNumbers(e) {
				return true
			}
		}
	}
	return false
}

// pgNumber writes a JSON number as PostgreSQL's numeric type reads and
// prints it: no exponent, as many decimals as written minus the exponent
// (none below zero), no leading zeros, no negative zero. A number numeric
// refuses (an exponent beyond ±1000) is returned as written: it cannot be
// stored anyway.
func pgNumber(s string) string {
	orig := s
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	exp := 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 1000 || e < -1000 {
			return orig
		}
		s, exp = s[:i], e
	}
	intPart, frac, _ := strings.Cut(s, ".")
	digits := intPart + frac
	if digits == "" {
		return orig
	}
	point := len(intPart) + exp // where the decimal point falls in digits
	scale := max(0, len(frac)-exp)
	var b strings.Builder
	switch {
	case point <= 0:
		b.WriteString("0")
	case point >= len(digits):
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", point-len(digits)))
	default:
		b.WriteString(digits[:point])
	}
	whole := strings.TrimLeft(b.String(), "0")
	if whole == "" {
		whole = "0"
	}
	out := whole
	if scale > 0 {
		var f string
		if point < 0 {
			f = strings.Repeat("0", -point) + digits
		} else {
			f = digits[point:]
		}
		out += "." + f
	}
	if neg && strings.Trim(digits, "0") != "" {
		out = "-" + out
	}
	return out
}
