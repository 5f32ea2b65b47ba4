package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Operations of a MemberChange.
const (
	OpAdd     = "add"
	OpRemove  = "remove"
	OpReplace = "replace"
)

// MaxChangeRecipients bounds the recipientIds of one MemberChange record:
// far above any real organizer, low enough that one record cannot ask for
// unbounded work.
const MaxChangeRecipients = 1_000_000

// MemberChange is one record of the optional members.topic: the
// organization service, which owns who belongs to an organizer or a
// merchant, tells Signal of a change. Records are keyed "{scope}:{scopeId}"
// so the changes of one group keep their order (one partition).
//
//	{"scope":"org","scopeId":"org-1","op":"add"|"remove"|"replace","recipientIds":["u1",…]}
//
// add and remove leave the other members as they are; replace makes the
// group exactly recipientIds (an empty list empties it).
type MemberChange struct {
	Scope        string   `json:"scope"`
	ScopeID      string   `json:"scopeId"`
	Op           string   `json:"op"`
	RecipientIDs []string `json:"recipientIds"`
}

// Key is the group the change is about.
func (c *MemberChange) Key() ScopeKey { return ScopeKey{Scope: c.Scope, ID: c.ScopeID} }

// RecordKey is the Kafka key a producer should give the record.
func (c *MemberChange) RecordKey() string { return c.Scope + ":" + c.ScopeID }

// memberWire tells a missing field from an empty one.
type memberWire struct {
	Scope        *string   `json:"scope"`
	ScopeID      *string   `json:"scopeId"`
	Op           *string   `json:"op"`
	RecipientIDs *[]string `json:"recipientIds"`
}

// DecodeMemberChange parses and validates one members.topic record. Every
// failure is an *InvalidError carrying a dead-letter reason. Unknown fields
// are ignored (producers may add some); duplicate recipient ids are
// removed, order kept.
func DecodeMemberChange(value []byte) (*MemberChange, error) {
	var w memberWire
	dec := json.NewDecoder(bytes.NewReader(value))
	err := dec.Decode(&w)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("invalid character after top-level value")
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, invalid(ReasonMalformedJSON, "the record is empty")
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return nil, invalid(ReasonInvalidField, "%s must be %s, got %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		}
		if errors.As(err, &typeErr) {
			return nil, invalid(ReasonMalformedJSON, "the record must be a JSON object, got %s", typeErr.Value)
		}
		return nil, invalid(ReasonMalformedJSON, "%v", err)
	}
	c := &MemberChange{}
	if w.Scope == nil || *w.Scope == "" {
		return nil, invalid(ReasonMissingField, "scope is required")
	}
	if c.Scope = *w.Scope; !IsGroupScope(c.Scope) {
		return nil, invalid(ReasonInvalidScope, "scope must be org or merchant, got %q", c.Scope)
	}
	if w.ScopeID == nil || *w.ScopeID == "" {
		return nil, invalid(ReasonMissingField, "scopeId is required")
	}
	if err := ValidateID("scopeId", *w.ScopeID); err != nil {
		return nil, invalid(ReasonInvalidField, "%v", err)
	}
	c.ScopeID = *w.ScopeID
	if w.Op == nil || *w.Op == "" {
		return nil, invalid(ReasonMissingField, "op is required")
	}
	switch c.Op = *w.Op; c.Op {
	case OpAdd, OpRemove, OpReplace:
	default:
		return nil, invalid(ReasonInvalidField, "op must be add, remove or replace, got %q", c.Op)
	}
	if w.RecipientIDs == nil {
		return nil, invalid(ReasonMissingField, "recipientIds is required (a list; [] with replace empties the group)")
	}
	ids := *w.RecipientIDs
	if len(ids) > MaxChangeRecipients {
		return nil, invalid(ReasonTooManyRecipients, "recipientIds has %d entries, the limit is %d", len(ids), MaxChangeRecipients)
	}
	c.RecipientIDs = make([]string, 0, len(ids))
	seen := make(map[string]struct{}, len(ids))
	for i, id := range ids {
		if err := ValidateID(fmt.Sprintf("recipientIds[%d]", i), id); err != nil {
			return nil, invalid(ReasonInvalidField, "%v", err)
		}
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			c.RecipientIDs = append(c.RecipientIDs, id)
		}
	}
	return c, nil
}

// MemberCounts is what a membership change did.
type MemberCounts struct {
	Added   int64 `json:"added"`   // memberships created
	Removed int64 `json:"removed"` // memberships deleted
	Members int64 `json:"members"` // replace only: the group's size afterwards
}

// IsGroupScope reports whether scope names a membership group (org or
// merchant; users messages name their recipients themselves).
func IsGroupScope(scope string) bool { return scope == ScopeOrg || scope == ScopeMerchant }
