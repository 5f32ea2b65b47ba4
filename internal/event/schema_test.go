package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/signal-notify/signal/internal/apispec"
	"github.com/signal-notify/signal/internal/event"
)

// Fixtures are named <reason>--<what>.json (reason "valid" for a message
// that passes); they are also what produce's tests send.
const fixtures = "testdata/messages"

// TestTheFixturesMeetTheAsyncAPISchemaAsTheDecoderDoes validates every
// message fixture with the decoder and with TActivityNotificationMessage of
// api/asyncapi.yaml: a valid message passes both, and an invalid one fails
// both for the same reason, about the same field.
func TestTheFixturesMeetTheAsyncAPISchemaAsTheDecoderDoes(t *testing.T) {
	schema, err := apispec.AsyncSchema("TActivityNotificationMessage")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(fixtures, "*--*"))
	if len(files) < 30 {
		t.Fatalf("only %d fixtures in %s", len(files), fixtures)
	}
	reasons := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		want, _, _ := strings.Cut(name, "--")
		reasons[want] = true
		t.Run(name, func(t *testing.T) {
			value, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, derr := event.Decode(value)
			decoded := "valid"
			var inv *event.InvalidError
			if errors.As(derr, &inv) {
				decoded = inv.Reason
			} else if derr != nil {
				t.Fatalf("Decode: %v is not an *InvalidError", derr)
			}
			reason, field := schemaVerdict(schema, value)
			if decoded != want || reason != want {
				t.Fatalf("decoder says %s (%v), schema says %s (at %q); the file name says %s", decoded, derr, reason, field, want)
			}
			// The decoder names the field, or the top-level field holding it
			// ("data must not contain NUL" for data.payment.subject).
			top, _, _ := strings.Cut(strings.SplitN(field, "[", 2)[0], ".")
			if want != "valid" && want != event.ReasonMalformedJSON && want != event.ReasonTooManyRecipients &&
				!strings.Contains(inv.Detail, field) && !strings.HasPrefix(inv.Detail, top+" ") {
				t.Errorf("the schema faults %q, the decoder %q", field, inv.Detail)
			}
		})
	}
	for _, r := range []string{"valid", event.ReasonMalformedJSON, event.ReasonMissingField, event.ReasonInvalidField, event.ReasonInvalidScope, event.ReasonTooManyRecipients} {
		if !reasons[r] {
			t.Errorf("no fixture for %s", r)
		}
	}
}

// schemaVerdict validates value and names the dead-letter reason the
// schema's first complaint stands for, and the field (as the decoder names
// it: actor.name, recipientIds[1]).
func schemaVerdict(schema *jsonschema.Schema, value []byte) (reason, field string) {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return event.ReasonMalformedJSON, ""
	}
	if _, err := dec.Token(); err != io.EOF {
		return event.ReasonMalformedJSON, ""
	}
	err := schema.Validate(v)
	if err == nil {
		return "valid", ""
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return "schema error: " + err.Error(), ""
	}
	var leaves []*jsonschema.ValidationError
	var collect func(e *jsonschema.ValidationError)
	collect = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
		}
		for _, c := range e.Causes {
			collect(c)
		}
	}
	collect(ve)
	// One fault can break several keywords ("" is too short and not in the
	// enum): the decoder's order of precedence picks the reason.
	order := []string{event.ReasonMalformedJSON, event.ReasonMissingField, event.ReasonInvalidScope, event.ReasonTooManyRecipients, event.ReasonInvalidField}
	best, bestField := len(order), ""
	for _, l := range leaves {
		r, f := leafReason(l, v)
		if i := slices.Index(order, r); i >= 0 && i < best {
			best, bestField = i, f
		}
	}
	if best == len(order) {
		return "unmapped: " + err.Error(), ""
	}
	return order[best], bestField
}

func leafReason(e *jsonschema.ValidationError, root any) (string, string) {
	loc := e.InstanceLocation
	field := fieldName(loc)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return event.ReasonMissingField, joinField(field, k.Missing[0])
	case *kind.MinLength, *kind.MinItems:
		return event.ReasonMissingField, field
	case *kind.Type:
		if len(loc) == 0 {
			return event.ReasonMalformedJSON, ""
		}
		if k.Got == "null" {
			return event.ReasonMissingField, field // null counts as missing
		}
		return event.ReasonInvalidField, field
	case *kind.Enum:
		return event.ReasonInvalidScope, field
	case *kind.MaxItems:
		return event.ReasonTooManyRecipients, field
	case *kind.MaxLength, *kind.Pattern, *kind.Format:
		return event.ReasonInvalidField, field
	}
	return "", field
}

// fieldName writes an instance location the way the decoder's messages do.
func fieldName(loc []string) string {
	var b strings.Builder
	for _, p := range loc {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			b.WriteString("[" + p + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func joinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}
