package tsgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Files are the generated files by path relative to clients/js.
func Files(openapi, asyncapi []byte) (map[string][]byte, error) {
	rest, err := generate("api/openapi.yaml", openapi, false)
	if err != nil {
		return nil, err
	}
	frames, err := generate("api/asyncapi.yaml", asyncapi, true)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"src/gen/rest.ts": rest, "src/gen/frames.ts": frames}, nil
}

// generate writes one file: the spec's components.schemas, then (with
// messages) the payload of each of its components.messages.
func generate(name string, spec []byte, messages bool) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(spec, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty", name)
	}
	components := get(root.Content[0], "components")
	if components == nil {
		return nil, fmt.Errorf("%s: no components", name)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated from %s by internal/tsgen (make types). DO NOT EDIT.\n", name)
	b.WriteString("/* eslint-disable */\n")
	schemas := get(components, "schemas")
	for i := 0; schemas != nil && i+1 < len(schemas.Content); i += 2 {
		key, s := schemas.Content[i].Value, schemas.Content[i+1]
		t, err := typeOf(s, "")
		if err != nil {
			return nil, fmt.Errorf("%s: schema %s: %w", name, key, err)
		}
		b.WriteString("\n")
		comment(&b, "", describe(s))
		fmt.Fprintf(&b, "export type %s = %s;\n", key, t)
	}
	if messages {
		msgs := get(components, "messages")
		for i := 0; msgs != nil && i+1 < len(msgs.Content); i += 2 {
			key, m := msgs.Content[i].Value, msgs.Content[i+1]
			p := get(m, "payload")
			if p == nil {
				continue
			}
			t, err := typeOf(p, "")
			if err != nil {
				return nil, fmt.Errorf("%s: message %s: %w", name, key, err)
			}
			b.WriteString("\n")
			doc := str(get(m, "title"))
			if doc == "" {
				doc = str(get(m, "summary"))
			}
			if n := str(get(m, "name")); n != "" {
				doc = strings.TrimSpace("`" + n + "`: " + doc)
			}
			comment(&b, "", doc)
			fmt.Fprintf(&b, "export type %sMessage = %s;\n", key, t)
		}
	}
	return b.Bytes(), nil
}

func get(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func str(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func describe(s *yaml.Node) string {
	if d := str(get(s, "description")); d != "" {
		return d
	}
	return str(get(s, "title"))
}

// comment writes text as a JSDoc block, indented.
func comment(b *bytes.Buffer, indent, text string) {
	text = strings.TrimSpace(text)
	if text == "" {
		return
	}
	text = strings.ReplaceAll(text, "*/", "*\\/")
	lines := strings.Split(text, "\n")
	if len(lines) == 1 {
		fmt.Fprintf(b, "%s/** %s */\n", indent, lines[0])
		return
	}
	fmt.Fprintf(b, "%s/**\n", indent)
	for _, l := range lines {
		fmt.Fprintf(b, "%s * %s\n", indent, strings.TrimRight(l, " "))
	}
	fmt.Fprintf(b, "%s */\n", indent)
}

var ident = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)

// known are the keywords that carry no type (validation or documentation).
var known = map[string]bool{
	"description": true, "title": true, "examples": true, "example": true, "format": true,
	"minLength": true, "maxLength": true, "pattern": true, "minimum": true, "maximum": true,
	"minItems": true, "maxItems": true, "propertyNames": true, "default": true, "deprecated": true,
	"if": true, "then": true, "else": true, "uniqueItems": true,
	"$ref": true, "type": true, "const": true, "enum": true, "properties": true, "required": true,
	"additionalProperties": true, "items": true, "allOf": true, "oneOf": true, "anyOf": true,
}

// typeOf is the TypeScript type of schema s; indent is the current depth.
// The first keyword that gives a type decides, in this order: $ref, const,
// enum, oneOf/anyOf, allOf, type (or properties alone).
func typeOf(s *yaml.Node, indent string) (string, error) {
	if s.Kind != yaml.MappingNode {
		return "", fmt.Errorf("line %d: a schema must be a mapping", s.Line)
	}
	for i := 0; i < len(s.Content); i += 2 {
		if k := s.Content[i].Value; !known[k] {
			return "", fmt.Errorf("line %d: keyword %q is not supported", s.Content[i].Line, k)
		}
	}
	if ref := str(get(s, "$ref")); ref != "" {
		const prefix = "#/components/schemas/"
		if !strings.HasPrefix(ref, prefix) {
			return "", fmt.Errorf("line %d: $ref %q is not a component schema", s.Line, ref)
		}
		return strings.TrimPrefix(ref, prefix), nil
	}
	if c := get(s, "const"); c != nil {
		return literal(c)
	}
	if e := get(s, "enum"); e != nil {
		return joinEach(e.Content, " | ", literal)
	}
	for _, k := range []string{"oneOf", "anyOf"} {
		if list := get(s, k); list != nil {
			return joinEach(list.Content, " | ", func(sub *yaml.Node) (string, error) {
				t, err := typeOf(sub, indent)
				return paren(t), err
			})
		}
	}
	if list := get(s, "allOf"); list != nil {
		return allOf(s, list, indent)
	}
	return typesOf(s, indent)
}

// joinEach joins what f makes of each node with sep; the first error ends it.
func joinEach(nodes []*yaml.Node, sep string, f func(*yaml.Node) (string, error)) (string, error) {
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		t, err := f(n)
		if err != nil {
			return "", err
		}
		parts = append(parts, t)
	}
	return strings.Join(parts, sep), nil
}

// allOf is the intersection of the schemas of list (the conditional
// requirements aside) and of the properties next to it (a base and more
// fields).
func allOf(s, list *yaml.Node, indent string) (string, error) {
	var parts []string
	for _, sub := range list.Content {
		if get(sub, "if") != nil {
			continue // a conditional requirement: not a type
		}
		t, err := typeOf(sub, indent)
		if err != nil {
			return "", err
		}
		parts = append(parts, paren(t))
	}
	if get(s, "properties") != nil {
		t, err := object(s, indent)
		if err != nil {
			return "", err
		}
		parts = append(parts, t)
	}
	return strings.Join(parts, " & "), nil
}

// typesOf is the union of the types of s's type keyword (one or a list),
// an object when it has only properties, unknown when neither.
func typesOf(s *yaml.Node, indent string) (string, error) {
	var types []*yaml.Node
	if t := get(s, "type"); t != nil {
		if t.Kind == yaml.SequenceNode {
			types = t.Content
		} else {
			types = []*yaml.Node{t}
		}
	} else if get(s, "properties") != nil {
		types = []*yaml.Node{{Kind: yaml.ScalarNode, Value: "object"}}
	} else {
		return "unknown", nil
	}
	return joinEach(types, " | ", func(t *yaml.Node) (string, error) { return namedType(s, t.Value, indent) })
}

// scalarTypes are the JSON Schema types that are one TypeScript type.
var scalarTypes = map[string]string{
	"string": "string", "integer": "number", "number": "number", "boolean": "boolean", "null": "null",
}

// namedType is the TypeScript type of s as JSON Schema type t.
func namedType(s *yaml.Node, t, indent string) (string, error) {
	if ts, ok := scalarTypes[t]; ok {
		return ts, nil
	}
	switch t {
	case "array":
		items := get(s, "items")
		if items == nil {
			return "unknown[]", nil
		}
		it, err := typeOf(items, indent)
		if err != nil {
			return "", err
		}
		return paren(it) + "[]", nil
	case "object":
		return object(s, indent)
	default:
		return "", fmt.Errorf("line %d: type %q", s.Line, t)
	}
}

// object is an object type: its properties (optional unless required) and
// an index signature unless additionalProperties is false.
func object(s *yaml.Node, indent string) (string, error) {
	props := get(s, "properties")
	required := map[string]bool{}
	if r := get(s, "required"); r != nil {
		for _, v := range r.Content {
			required[v.Value] = true
		}
	}
	var extra string
	switch ap := get(s, "additionalProperties"); {
	case ap != nil && ap.Kind == yaml.ScalarNode && ap.Value == "false":
	case ap != nil && ap.Kind == yaml.MappingNode:
		t, err := typeOf(ap, indent+"  ")
		if err != nil {
			return "", err
		}
		extra = t
	default:
		extra = "unknown"
	}
	if props == nil || len(props.Content) == 0 {
		if extra == "" {
			return "Record<string, never>", nil
		}
		return "Record<string, " + extra + ">", nil
	}
	var b bytes.Buffer
	b.WriteString("{\n")
	inner := indent + "  "
	for i := 0; i+1 < len(props.Content); i += 2 {
		k, p := props.Content[i].Value, props.Content[i+1]
		t, err := typeOf(p, inner)
		if err != nil {
			return "", fmt.Errorf("property %s: %w", k, err)
		}
		comment(&b, inner, describe(p))
		name := k
		if !ident.MatchString(k) {
			q, _ := json.Marshal(k)
			name = string(q)
		}
		opt := "?"
		if required[k] {
			opt = ""
		}
		fmt.Fprintf(&b, "%s%s%s: %s;\n", inner, name, opt, t)
	}
	if extra != "" && extra != "unknown" {
		fmt.Fprintf(&b, "%s[key: string]: %s;\n", inner, extra)
	}
	b.WriteString(indent + "}")
	return b.String(), nil
}

func literal(n *yaml.Node) (string, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return "", err
	}
	switch v.(type) {
	case string, bool, int, float64, nil:
	default:
		return "", fmt.Errorf("line %d: only scalar const and enum values", n.Line)
	}
	out, err := json.Marshal(v)
	return string(out), err
}

func paren(t string) string {
	if strings.ContainsAny(t, "|&") && !strings.HasPrefix(t, "{") {
		return "(" + t + ")"
	}
	return t
}

// Names lists a generated file's exported types, sorted (for tests).
func Names(file []byte) []string {
	re := regexp.MustCompile(`(?m)^export type (\w+)`)
	var out []string
	for _, m := range re.FindAllSubmatch(file, -1) {
		out = append(out, string(m[1]))
	}
	sort.Strings(out)
	return out
}
