package event

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// fastWire parses a message into w without reflection. It handles the
// shape producers send; on anything else — a type mismatch, a key that
// matches a field only without regard to case, invalid UTF-8, malformed
// JSON — it reports false and the caller decodes with encoding/json, whose
// result and error messages stay the reference (FuzzFastWire checks both
// agree whenever the fast path answers).
func fastWire(b []byte, w *wire) bool {
	p := parser{b: b}
	p.space()
	if !p.consume('{') {
		return false
	}
	p.space()
	if p.consume('}') {
		return p.end()
	}
	seenActor := false
	for {
		key, ok := p.key()
		if !ok {
			return false
		}
		switch key {
		case "eventType":
			w.EventType, ok = p.optString()
		case "recipientScope":
			w.RecipientScope, ok = p.optString()
		case "actorId":
			w.ActorID, ok = p.optString()
		case "organizerId":
			w.OrganizerID, ok = p.optString()
		case "merchantId":
			w.MerchantID, ok = p.optString()
		case "occurredAt":
			w.OccurredAt, ok = p.optString()
		case "actor":
			if seenActor {
				return false // encoding/json merges a repeated object into the first
			}
			seenActor = true
			w.Actor, ok = p.actor()
		case "recipientIds":
			w.RecipientIDs, ok = p.stringList()
		case "data":
			w.Data, ok = p.value(0)
		default:
			if dst := w.lifecycleField(key); dst != nil {
				*dst, ok = p.optString()
				break
			}
			if foldsToField(key, wireFields) {
				return false // encoding/json would match it without regard to case
			}
			_, ok = p.value(0)
		}
		if !ok {
			return false
		}
		p.space()
		if p.consume('}') {
			return p.end()
		}
		if !p.consume(',') {
			return false
		}
		p.space()
	}
}

var (
	wireFields = []string{"eventType", "recipientScope", "actorId", "actor", "organizerId", "merchantId", "recipientIds", "data", "occurredAt",
		"eventId", "expiresAt", "groupKey"}
	actorFields = []string{"id", "name", "type"}
)

// foldsToField reports whether key equals a field name without regard to
// ASCII case (but not exactly: exact matches were handled).
func foldsToField(key string, fields []string) bool {
	for _, f := range fields {
		if len(f) != len(key) {
			continue
		}
		same := true
		for i := 0; i < len(f); i++ {
			a, c := f[i], key[i]
			if a|0x20 != c|0x20 || !isLetter(a) && a != c {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	// Non-ASCII keys may fold onto ASCII names (ſ, K): let encoding/json decide.
	for i := 0; i < len(key); i++ {
		if key[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// maxDepth bounds nesting; deeper documents go to encoding/json.
const maxDepth = 100

type parser struct {
	b []byte
	i int
}

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) consume(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) end() bool {
	p.space()
	return p.i == len(p.b)
}

// key reads "name" : and leaves the parser at the value.
func (p *parser) key() (string, bool) {
	s, ok := p.str()
	if !ok {
		return "", false
	}
	p.space()
	if !p.consume(':') {
		return "", false
	}
	p.space()
	return s, true
}

// str reads a JSON string. Escapes are decoded; invalid UTF-8 and lone
// surrogates (which encoding/json rewrites) end the fast path.
func (p *parser) str() (string, bool) {
	if !p.consume('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, true
		case c == '\\':
			return p.escaped(start)
		case c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			p.i += size
		}
	}
	return "", false
}

// escaped finishes a string that holds escapes, from its start.
func (p *parser) escaped(start int) (string, bool) {
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), true
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return "", false
			}
			e := p.b[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				if p.i+4 > len(p.b) {
					return "", false
				}
				v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 16)
				if err != nil || v >= 0xD800 && v <= 0xDFFF { // surrogates: leave them to encoding/json
					return "", false
				}
				out = utf8.AppendRune(out, rune(v))
				p.i += 4
			default:
				return "", false
			}
		case c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			out = append(out, c)
			p.i++
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			out = append(out, p.b[p.i:p.i+size]...)
			p.i += size
		}
	}
	return "", false
}

func (p *parser) null() bool {
	if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// optString reads a string or null.
func (p *parser) optString() (*string, bool) {
	if p.null() {
		return nil, true
	}
	s, ok := p.str()
	if !ok {
		return nil, false
	}
	return &s, true
}

func (p *parser) actor() (*wireActor, bool) {
	if p.null() {
		return nil, true
	}
	if !p.consume('{') {
		return nil, false
	}
	a := &wireActor{}
	p.space()
	if p.consume('}') {
		return a, true
	}
	for {
		key, ok := p.key()
		if !ok {
			return nil, false
		}
		switch key {
		case "id":
			a.ID, ok = p.optString()
		case "name":
			a.Name, ok = p.optString()
		case "type":
			a.Type, ok = p.optString()
		default:
			if foldsToField(key, actorFields) {
				return nil, false
			}
			_, ok = p.value(1)
		}
		if !ok {
			return nil, false
		}
		p.space()
		if p.consume('}') {
			return a, true
		}
		if !p.consume(',') {
			return nil, false
		}
		p.space()
	}
}

func (p *parser) stringList() ([]*string, bool) {
	if p.null() {
		return nil, true
	}
	if !p.consume('[') {
		return nil, false
	}
	list := []*string{}
	p.space()
	if p.consume(']') {
		return list, true
	}
	for {
		s, ok := p.optString()
		if !ok {
			return nil, false
		}
		list = append(list, s)
		p.space()
		if p.consume(']') {
			return list, true
		}
		if !p.consume(',') {
			return nil, false
		}
		p.space()
	}
}

// value reads any JSON value as encoding/json would into an interface
// with UseNumber: map[string]any, []any, string, json.Number, bool, nil.
func (p *parser) value(depth int) (any, bool) {
	if depth > maxDepth || p.i >= len(p.b) {
		return nil, false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		m := map[string]any{}
		p.space()
		if p.consume('}') {
			return m, true
		}
		for {
			k, ok := p.key()
			if !ok {
				return nil, false
			}
			v, ok := p.value(depth + 1)
			if !ok {
				return nil, false
			}
			m[k] = v
			p.space()
			if p.consume('}') {
				return m, true
			}
			if !p.consume(',') {
				return nil, false
			}
			p.space()
		}
	case c == '[':
		p.i++
		list := []any{}
		p.space()
		if p.consume(']') {
			return list, true
		}
		for {
			v, ok := p.value(depth + 1)
			if !ok {
				return nil, false
			}
			list = append(list, v)
			p.space()
			if p.consume(']') {
				return list, true
			}
			if !p.consume(',') {
				return nil, false
			}
			p.space()
		}
	case c == '"':
		return p.str()
	case c == 't':
		if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "true" {
			p.i += 4
			return true, true
		}
	case c == 'f':
		if len(p.b)-p.i >= 5 && string(p.b[p.i:p.i+5]) == "false" {
			p.i += 5
			return false, true
		}
	case c == 'n':
		if p.null() {
			return nil, true
		}
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return nil, false
}

// number reads a JSON number (RFC 8259 grammar) as json.Number.
func (p *parser) number() (any, bool) {
	start := p.i
	p.consume('-')
	switch {
	case p.consume('0'):
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return nil, false
	}
	if p.consume('.') {
		if !p.digits() {
			return nil, false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if !p.consume('+') {
			p.consume('-')
		}
		if !p.digits() {
			return nil, false
		}
	}
	return json.Number(p.b[start:p.i]), true
}

func (p *parser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}
