package event

import (
	"strconv"
	"unicode/utf8"
)

// FrameBuilder encodes notification-created frames without reflection. The
// part shared by every recipient of a message (type, content, data, …) is
// encoded once and reused for the message's next rows.
type FrameBuilder struct {
	last   *Row   // the row whose message the cached part belongs to
	shared []byte // ,"type":…,"data":…,"isRead":
}

// Frame returns the observation/signal/notification/created frame of r,
// byte for byte what MarshalFrame would give.
func (b *FrameBuilder) Frame(r *Row) []byte {
	if b.last == nil || !SameMessage(b.last, r) {
		b.shared = b.shared[:0]
		b.shared = append(b.shared, `,"type":`...)
		b.shared = appendString(b.shared, r.Type)
		b.shared = append(b.shared, `,"organizerId":`...)
		b.shared = appendNullable(b.shared, r.OrganizerID)
		b.shared = append(b.shared, `,"content":`...)
		b.shared = appendString(b.shared, r.Content)
		b.shared = append(b.shared, `,"actionUrl":`...)
		b.shared = appendNullable(b.shared, r.ActionURL)
		b.shared = append(b.shared, `,"data":`...)
		b.shared = append(b.shared, r.Data...)
		b.shared = append(b.shared, `,"isRead":`...)
	}
	b.last = r
	room := r.Room()
	out := make([]byte, 0, 240+len(room)+len(b.shared))
	out = append(out, `{"topic":"`+TopicNotificationCreated+`","room":`...)
	out = appendString(out, room)
	if r.Seq > 0 {
		out = append(out, `,"pos":`...)
		out = strconv.AppendInt(out, r.Seq, 10)
	}
	if c := r.Counts; c != nil {
		out = AppendCounts(append(out, `,"counts":`...), *c)
	}
	out = append(out, `,"data":{"id":"`...)
	out = append(out, r.ID.String()...)
	out = append(out, '"')
	out = append(out, b.shared...)
	out = strconv.AppendBool(out, r.IsRead)
	out = append(out, `,"createdAt":"`...)
	out = r.CreatedAt.UTC().AppendFormat(out, TimeLayout)
	out = appendLifecycle(append(out, '"'), r)
	return append(out, `}}`...)
}

// appendLifecycle writes the optional members of the payload after
// createdAt (expiresAt, count, actors), as encoding/json would.
func appendLifecycle(out []byte, r *Row) []byte {
	if !r.ExpiresAt.IsZero() {
		out = append(out, `,"expiresAt":"`...)
		out = r.ExpiresAt.UTC().AppendFormat(out, TimeLayout)
		out = append(out, '"')
	}
	if r.GroupKey == "" {
		return out
	}
	out = append(out, `,"count":`...)
	out = strconv.AppendInt(out, int64(r.count()), 10)
	out = append(out, `,"actors":[`...)
	for i, a := range r.groupActors() {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"id":`...)
		out = appendString(out, a.ID)
		out = append(out, `,"name":`...)
		out = appendString(out, a.Name)
		out = append(out, `,"type":`...)
		out = appendString(out, a.Type)
		out = append(out, '}')
	}
	return append(out, ']')
}

// AppendCounts writes c as JSON, as encoding/json would.
func AppendCounts(dst []byte, c Counts) []byte {
	dst = append(dst, `{"unread":`...)
	dst = strconv.AppendInt(dst, c.Unread, 10)
	dst = append(dst, `,"unseen":`...)
	dst = strconv.AppendInt(dst, c.Unseen, 10)
	dst = append(dst, `,"total":`...)
	dst = strconv.AppendInt(dst, c.Total, 10)
	return append(dst, '}')
}

// SameMessage reports whether two rows carry the same message-level fields
// (adjacent rows of one message, one per recipient).
func SameMessage(a, b *Row) bool {
	return a.Source == b.Source && a.Type == b.Type && a.OrganizerID == b.OrganizerID &&
		a.Content == b.Content && a.ActionURL == b.ActionURL && string(a.Data) == string(b.Data)
}

func appendNullable(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendString(dst, s)
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string the way encoding/json does:
// <, > and & escaped (safe in HTML), U+2028 and U+2029 escaped (safe in
// JavaScript), invalid UTF-8 replaced by U+FFFD.
func appendString(dst []byte, s string) []byte { return appendJSONString(dst, s, true) }

// appendJSONString writes s as a JSON string; escapeHTML as encoding/json's
// Encoder.SetEscapeHTML.
func appendJSONString(dst []byte, s string, escapeHTML bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!escapeHTML || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
