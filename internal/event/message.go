package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Recipient scopes of a message.
const (
	ScopeOrg      = "org"
	ScopeMerchant = "merchant"
	ScopeUsers    = "users"
)

// Scopes lists the valid recipientScope values (for flags and completion).
var Scopes = []string{ScopeUsers, ScopeOrg, ScopeMerchant}

// Limits on inbound messages. They keep one message from producing unbounded
// work or ids that cannot serve as room names.
const (
	MaxIDBytes      = 256
	MaxRecipientIDs = 10000
)

// Dead-letter reasons. They are stable codes: operators filter on them.
const (
	ReasonMalformedJSON     = "malformed_json"
	ReasonMissingField      = "missing_field"
	ReasonInvalidField      = "invalid_field"
	ReasonInvalidScope      = "invalid_scope"
	ReasonTooManyRecipients = "too_many_recipients"
	ReasonNoRecipients      = "no_recipients"
	ReasonDBRejected        = "db_rejected"
	// ReasonTooLarge: data, the rendered row or the record's rows in all
	// are over their ingest.* bound (or the value is too large to parse).
	ReasonTooLarge = "too_large"
	// ReasonTimestampOutOfRange: no timestamp, or one further ahead than
	// ingest.max_clock_skew.
	ReasonTimestampOutOfRange = "timestamp_out_of_range"
)

// Actor is who caused the event.
type Actor struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// Message is the seed's TActivityNotificationMessage.
type Message struct {
	EventType      string          `json:"eventType"`
	RecipientScope string          `json:"recipientScope"`
	ActorID        string          `json:"actorId"`
	Actor          Actor           `json:"actor"`
	OrganizerID    string          `json:"organizerId"`
	MerchantID     string          `json:"merchantId,omitempty"`
	RecipientIDs   []string        `json:"recipientIds,omitempty"`
	Data           json.RawMessage `json:"data"`
	OccurredAt     string          `json:"occurredAt"`
	// The optional lifecycle fields (lifecycle.go).
	EventID   string `json:"eventId,omitempty"`
	ExpiresAt string `json:"expiresAt,omitempty"`
	Grouping  string `json:"groupKey,omitempty"` // groupKey (GroupKey is the membership group)
}

// Decoded is a validated message with the parts later steps need computed once.
type Decoded struct {
	Message
	// Recipients is RecipientIDs without duplicates, in order (scope users).
	Recipients []string
	// DataValue is Data parsed, for templates.
	DataValue map[string]any
	// CanonicalData is Data re-encoded with sorted keys and no spaces.
	CanonicalData []byte
	Occurred      time.Time
	// Expires is ExpiresAt parsed (zero: the notification does not expire).
	Expires time.Time
}

// InvalidError says why a message cannot become a notification.
type InvalidError struct {
	Reason string // one of the Reason* codes
	Detail string
	err    error // the cause, when there is one
}

// Unwrap is the cause, when there is one.
func (e *InvalidError) Unwrap() error { return e.err }

func (e *InvalidError) Error() string {
	if e.Detail == "" {
		return e.Reason
	}
	return e.Reason + ": " + e.Detail
}

func invalid(reason, format string, args ...any) *InvalidError {
	return &InvalidError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// wire mirrors Message with pointers, to tell a missing field from an empty one.
type wire struct {
	EventType      *string    `json:"eventType"`
	RecipientScope *string    `json:"recipientScope"`
	ActorID        *string    `json:"actorId"`
	Actor          *wireActor `json:"actor"`
	OrganizerID    *string    `json:"organizerId"`
	MerchantID     *string    `json:"merchantId"`
	RecipientIDs   []*string  `json:"recipientIds"`
	Data           any        `json:"data"`
	OccurredAt     *string    `json:"occurredAt"`
	EventID        *string    `json:"eventId"`
	ExpiresAt      *string    `json:"expiresAt"`
	GroupKey       *string    `json:"groupKey"`
}

type wireActor struct {
	ID   *string `json:"id"`
	Name *string `json:"name"`
	Type *string `json:"type"`
}

// Decode parses and validates one message value. Every failure is an
// *InvalidError carrying a dead-letter reason.
func Decode(value []byte) (*Decoded, error) {
	w, err := decodeWire(value)
	if err != nil {
		return nil, err
	}
	d := &Decoded{}
	for _, step := range []func(*wire, *Decoded) error{decodeIdentity, decodeRecipients, decodeData, decodeOccurred} {
		if err := step(w, d); err != nil {
			return nil, err
		}
	}
	return withLifecycle(d, w)
}

// decodeWire parses the value into the wire shape: the fast decoder, or
// encoding/json for what it does not take (and for the precise error).
func decodeWire(value []byte) (*wire, error) {
	var w wire
	if fastWire(value, &w) {
		return &w, nil
	}
	w = wire{}
	err := slowWire(value, &w)
	if err == nil {
		return &w, nil
	}
	if errors.Is(err, io.EOF) {
		return nil, invalid(ReasonMalformedJSON, "the message is empty")
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return nil, invalid(ReasonInvalidField, "%s must be %s, got %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	}
	if errors.As(err, &typeErr) {
		return nil, invalid(ReasonMalformedJSON, "message must be a JSON object, got %s", typeErr.Value)
	}
	return nil, invalid(ReasonMalformedJSON, "%v", err)
}

// decodeIdentity takes the event type, the actor and the organizer.
func decodeIdentity(w *wire, d *Decoded) error {
	var err error
	field := func(name string, p *string, dst *string) {
		if err != nil {
			return
		}
		err = checkID(name, p)
		if err == nil {
			*dst = *p
		}
	}
	field("eventType", w.EventType, &d.EventType)
	field("actorId", w.ActorID, &d.ActorID)
	if err == nil && w.Actor == nil {
		err = invalid(ReasonMissingField, "actor is required")
	}
	if w.Actor != nil {
		field("actor.id", w.Actor.ID, &d.Actor.ID)
		field("actor.name", w.Actor.Name, &d.Actor.Name)
		field("actor.type", w.Actor.Type, &d.Actor.Type)
	}
	field("organizerId", w.OrganizerID, &d.OrganizerID)
	if err == nil {
		err = checkIdentifier("organizerId", w.OrganizerID)
	}
	return err
}

// decodeRecipients takes the scope, the merchant and the recipient list
// (kept as sent, and without repeats).
func decodeRecipients(w *wire, d *Decoded) error {
	if w.RecipientScope == nil || *w.RecipientScope == "" {
		return invalid(ReasonMissingField, "recipientScope is required")
	}
	d.RecipientScope = *w.RecipientScope
	switch d.RecipientScope {
	case ScopeOrg:
	case ScopeMerchant:
		if w.MerchantID == nil || *w.MerchantID == "" {
			return invalid(ReasonMissingField, "merchantId is required when recipientScope is merchant")
		}
	case ScopeUsers:
		if len(w.RecipientIDs) == 0 {
			return invalid(ReasonMissingField, "recipientIds must be a non-empty list when recipientScope is users")
		}
	default:
		return invalid(ReasonInvalidScope, "recipientScope must be one of org, merchant, users; got %q", d.RecipientScope)
	}
	if w.MerchantID != nil && *w.MerchantID != "" {
		if err := checkIdentifier("merchantId", w.MerchantID); err != nil {
			return err
		}
		d.MerchantID = *w.MerchantID
	}
	if len(w.RecipientIDs) > MaxRecipientIDs {
		return invalid(ReasonTooManyRecipients, "recipientIds has %d entries, the limit is %d", len(w.RecipientIDs), MaxRecipientIDs)
	}
	seen := make(map[string]struct{}, len(w.RecipientIDs))
	for i, p := range w.RecipientIDs {
		if err := checkIdentifier(fmt.Sprintf("recipientIds[%d]", i), p); err != nil {
			return err
		}
		d.RecipientIDs = append(d.RecipientIDs, *p)
		if _, dup := seen[*p]; !dup {
			seen[*p] = struct{}{}
			d.Recipients = append(d.Recipients, *p)
		}
	}
	return nil
}

// decodeData takes data: an object without NUL, in its canonical form
// (hashed into the ids) and its stored form.
func decodeData(w *wire, d *Decoded) error {
	switch data := w.Data.(type) {
	case nil:
		return invalid(ReasonMissingField, "data is required")
	case map[string]any:
		d.DataValue = data
	default:
		return invalid(ReasonInvalidField, "data must be a JSON object")
	}
	if hasNUL(d.DataValue) {
		return invalid(ReasonInvalidField, "data must not contain the NUL character (\\u0000)")
	}
	var err error
	if d.CanonicalData, err = canonicalObject(d.DataValue); err != nil {
		return err
	}
	// Data is what is stored and pushed: the canonical form with numbers as
	// PostgreSQL prints them, so a repush from the row is the same bytes
	// (CanonicalData, hashed into the id, keeps them as written).
	d.Data = storedObject(d.DataValue, d.CanonicalData)
	return nil
}

// decodeOccurred takes occurredAt, an RFC 3339 time.
func decodeOccurred(w *wire, d *Decoded) error {
	if w.OccurredAt == nil || *w.OccurredAt == "" {
		return invalid(ReasonMissingField, "occurredAt is required")
	}
	d.OccurredAt = *w.OccurredAt
	var err error
	if d.Occurred, err = time.Parse(time.RFC3339Nano, d.OccurredAt); err != nil {
		return invalid(ReasonInvalidField, "occurredAt must be an RFC 3339 time, got %q", d.OccurredAt)
	}
	return nil
}

func checkID(name string, p *string) error {
	switch {
	case p == nil || *p == "":
		return invalid(ReasonMissingField, "%s is required", name)
	case len(*p) > MaxIDBytes:
		return invalid(ReasonInvalidField, "%s is longer than %d bytes", name, MaxIDBytes)
	case !utf8.ValidString(*p) || strings.ContainsRune(*p, 0) || strings.ContainsRune(*p, utf8.RuneError):
		return invalid(ReasonInvalidField, "%s must be valid UTF-8 text without NUL", name)
	}
	return nil
}

// checkIdentifier is checkID plus the identifier rule (ids.go): organizer,
// merchant and recipient ids become room names and REST parameters.
func checkIdentifier(name string, p *string) error {
	if err := checkID(name, p); err != nil {
		return err
	}
	if err := ValidateID(name, *p); err != nil {
		return invalid(ReasonInvalidField, "%v", err)
	}
	return nil
}

// slowWire decodes with encoding/json: the reference, and the path for
// anything the fast parser leaves alone.
func slowWire(value []byte, w *wire) error {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	err := dec.Decode(w)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("invalid character after top-level value")
		}
	}
	return err
}

// canonicalObject encodes a decoded object with sorted keys, no
// insignificant space and numbers as written, so equal data hashes equally.
// (PostgreSQL cannot store the NUL character in jsonb: Decode refuses it
// before, rather than failing the whole batch's transaction later.)
func canonicalObject(m map[string]any) ([]byte, error) {
	if b, ok := appendCanonical(make([]byte, 0, 128), m); ok {
		return b, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, invalid(ReasonInvalidField, "data: %v", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice":
		return "a list"
	case "struct", "map", "ptr":
		return "an object"
	}
	return goKind
}

// hasNUL reports whether any key or string inside v holds a NUL character.
func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.IndexByte(v, 0) >= 0
	case map[string]any:
		for k, e := range v {
			if strings.IndexByte(k, 0) >= 0 || hasNUL(e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasNUL(e) {
				return true
			}
		}
	}
	return false
}

// ScopeKey names a group of recipients: an organizer or a merchant.
type ScopeKey struct {
	Scope string // ScopeOrg or ScopeMerchant
	ID    string
}

// GroupKey is the membership group an org or merchant message goes to.
func (d *Decoded) GroupKey() (ScopeKey, bool) {
	switch d.RecipientScope {
	case ScopeOrg:
		return ScopeKey{ScopeOrg, d.OrganizerID}, true
	case ScopeMerchant:
		return ScopeKey{ScopeMerchant, d.MerchantID}, true
	}
	return ScopeKey{}, false
}
