package apispec_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/signal-notify/signal/internal/apispec"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/httpapi"
)

func TestTheOpenAPIDocumentIsValidOpenAPI31(t *testing.T) {
	if err := apispec.OpenAPIDocument(); err != nil {
		t.Fatal(err)
	}
	doc, _ := apispec.OpenAPI()
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
}

func TestEveryRouteIsInTheOpenAPIDocumentAndEveryDocumentedRouteExists(t *testing.T) {
	documented, err := apispec.Operations()
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, r := range httpapi.Routes() {
		routes = append(routes, r.Method+" "+r.Path)
	}
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not under paths in api/openapi.yaml (a section 8 route may be written already under components/pathItems: $ref it)", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("api/openapi.yaml documents %s, which the router does not have", d)
		}
	}
}

// Every "#/…" reference of both documents points at something.
func TestEveryReferenceResolves(t *testing.T) {
	for name, load := range map[string]func() (map[string]any, error){"openapi.yaml": apispec.OpenAPI, "asyncapi.yaml": apispec.AsyncAPI} {
		doc, err := load()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		walk(doc, func(m map[string]any) {
			ref, ok := m["$ref"].(string)
			if !ok {
				return
			}
			if _, found := pointer(doc, ref); !found {
				t.Errorf("%s: $ref %q points at nothing", name, ref)
			}
		})
	}
}

// The stored notification is the same object in both documents: the data of
// the created frame is an item of GET /notifications without the inbox
// states — the same properties, each the same schema, the same required.
func TestTheNotificationIsTheSameInBothDocuments(t *testing.T) {
	o, _ := apispec.OpenAPI()
	a, _ := apispec.AsyncAPI()
	rest, _ := pointer(o, "#/components/schemas/InboxItem")
	ws, _ := pointer(a, "#/components/schemas/NotificationCreatedPayload")
	restProps := rest.(map[string]any)["properties"].(map[string]any)
	wsProps := ws.(map[string]any)["properties"].(map[string]any)
	if len(wsProps) < 8 {
		t.Fatalf("NotificationCreatedPayload has %d properties", len(wsProps))
	}
	for name, schema := range wsProps {
		if !reflect.DeepEqual(restProps[name], schema) {
			t.Errorf("property %s: openapi InboxItem has %v, asyncapi NotificationCreatedPayload %v", name, restProps[name], schema)
		}
	}
	restRequired := rest.(map[string]any)["required"].([]any)
	for _, r := range ws.(map[string]any)["required"].([]any) {
		if !slices.Contains(restRequired, r) {
			t.Errorf("%v is required in the frame's data but not in an inbox item", r)
		}
	}
	for _, k := range []string{"type", "additionalProperties"} {
		if !reflect.DeepEqual(rest.(map[string]any)[k], ws.(map[string]any)[k]) {
			t.Errorf("%s differs between openapi InboxItem and asyncapi NotificationCreatedPayload", k)
		}
	}
}

// The examples the AsyncAPI document shows are valid messages.
func TestTheAsyncAPIExamplesMatchTheirSchemas(t *testing.T) {
	a, _ := apispec.AsyncAPI()
	msgs, _ := pointer(a, "#/components/messages")
	n := 0
	for name, m := range msgs.(map[string]any) {
		examples, _ := m.(map[string]any)["examples"].([]any)
		for i, ex := range examples {
			s, err := apispec.AsyncMessagePayload(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(toJSON(t, ex.(map[string]any)["payload"])); err != nil {
				t.Errorf("message %s, example %d: %v", name, i, err)
			}
			n++
		}
	}
	if n < 5 {
		t.Errorf("only %d examples checked", n)
	}
}

// Every topic, action, error code and close code the code has is in the
// AsyncAPI document, and every one the document lists as live is in the code.
func TestTheAsyncAPIDocumentNamesEveryTopicActionErrorCodeAndCloseCode(t *testing.T) {
	a, err := apispec.AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	topics := constants(t, "../event", "Topic")
	actions := constants(t, "../hub", "Action")
	hubCodes := constants(t, "../hub", "Code")
	closeCodes := constants(t, "../hub", "Close")
	if len(topics) < 7 || len(actions) < 3 || len(hubCodes) < 10 || len(closeCodes) < 3 {
		t.Fatalf("found %d topics, %d actions, %d codes, %d close codes: the constants moved", len(topics), len(actions), len(hubCodes), len(closeCodes))
	}

	// Messages of the socket channel, by the topic or action they carry.
	channel, _ := pointer(a, "#/channels/socket/messages")
	var docTopics, docActions []string
	for name, ref := range channel.(map[string]any) {
		target, _ := pointer(a, ref.(map[string]any)["$ref"].(string))
		payload := target.(map[string]any)["payload"]
		topic, action := constOf(a, payload, "topic"), constOf(a, payload, "action")
		switch {
		case topic != "":
			docTopics = append(docTopics, topic)
		case action != "":
			docActions = append(docActions, action)
		case name != "apiFrame":
			t.Errorf("socket message %s carries neither a topic nor an action", name)
		}
	}
	sameSet(t, "topics (event.Topic*)", values(topics), docTopics)
	sameSet(t, "client actions (hub.Action*)", values(actions), docActions)

	codes, _ := pointer(a, "#/components/schemas/ErrorData/properties/code/enum")
	sameSet(t, "error frame codes (hub.Code*)", values(hubCodes), strs(codes))

	listed, _ := pointer(a, "#/channels/socket/x-signal-close-codes")
	var live []string
	for _, c := range listed.([]any) {
		m := c.(map[string]any)
		if _, planned := m["x-signal-status"]; !planned && m["code"] != 1000 {
			live = append(live, strconv.Itoa(m["code"].(int)))
		}
	}
	sameSet(t, "close codes (hub.Close*)", values(closeCodes), live)

	// Every channel message is sent or received by an operation.
	ops, _ := pointer(a, "#/operations")
	used := map[string]bool{}
	for _, op := range ops.(map[string]any) {
		for _, m := range op.(map[string]any)["messages"].([]any) {
			used[m.(map[string]any)["$ref"].(string)] = true
		}
	}
	for name := range channel.(map[string]any) {
		if !used["#/channels/socket/messages/"+name] {
			t.Errorf("socket message %s is in no operation", name)
		}
	}
}

// The REST error codes of the code are the ones the OpenAPI document lists.
func TestTheOpenAPIDocumentListsEveryRESTErrorCode(t *testing.T) {
	o, _ := apispec.OpenAPI()
	enum, _ := pointer(o, "#/components/schemas/ErrorCode/enum")
	want := values(constants(t, "../httpapi", "Code"))
	want = append(want, "invalid_room") // hub.CodeInvalidRoom, answered for a bad room name
	// POST /notifications answers a message a record would be a dead letter
	// for with the reason (event.Reason*), but for the reasons of a record
	// only: the database refusing its rows, its Kafka timestamp.
	for _, r := range values(constants(t, "../event", "Reason")) {
		if r != "db_rejected" && r != "timestamp_out_of_range" {
			want = append(want, r)
		}
	}
	sameSet(t, "REST error codes (httpapi.Code*)", want, strs(enum))
}

// constants returns the string and integer constants of the package in dir
// whose names start with prefix (exported ones, tests excluded).
func constants(t *testing.T, dir, prefix string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, prefix) || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
						v := lit.Value
						if lit.Kind == token.STRING {
							v, _ = strconv.Unquote(v)
						}
						out[n.Name] = v
					}
				}
			}
		}
	}
	return out
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func sameSet(t *testing.T, what string, code, doc []string) {
	t.Helper()
	sort.Strings(code)
	sort.Strings(doc)
	for _, c := range code {
		if !slices.Contains(doc, c) {
			t.Errorf("%s: %q is in the code but not in the document", what, c)
		}
	}
	for _, d := range doc {
		if !slices.Contains(code, d) {
			t.Errorf("%s: %q is in the document but not in the code", what, d)
		}
	}
}

// constOf finds properties.<field>.const in a schema, through $ref and allOf.
func constOf(doc map[string]any, schema any, field string) string {
	m, ok := schema.(map[string]any)
	if !ok {
		return ""
	}
	if ref, ok := m["$ref"].(string); ok {
		target, _ := pointer(doc, ref)
		return constOf(doc, target, field)
	}
	if props, ok := m["properties"].(map[string]any); ok {
		if f, ok := props[field].(map[string]any); ok {
			if c, ok := f["const"].(string); ok {
				return c
			}
		}
	}
	for _, sub := range anySlice(m["allOf"]) {
		if c := constOf(doc, sub, field); c != "" {
			return c
		}
	}
	return ""
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// pointer resolves a "#/a/b" reference in doc.
func pointer(doc map[string]any, ref string) (any, bool) {
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func walk(v any, fn func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		fn(v)
		for _, e := range v {
			walk(e, fn)
		}
	case []any:
		for _, e := range v {
			walk(e, fn)
		}
	}
}

func toJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := apispec.UnmarshalJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The complete message and frame docs/protocol.md shows are valid: the
// message by the schema and by the decoder, the frame by its schema.
func TestTheDocumentedMessageAndFrameAreValid(t *testing.T) {
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## The Kafka message")
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(section, 2)
	if !ok || len(blocks) != 2 {
		t.Fatal("docs/protocol.md has no \"## The Kafka message\" section with a message and a frame")
	}
	message, frame := []byte(blocks[0][1]), []byte(blocks[1][1])
	if _, err := event.Decode(message); err != nil {
		t.Errorf("the decoder refuses the documented message: %v", err)
	}
	s, _ := apispec.AsyncSchema("TActivityNotificationMessage")
	v, _ := apispec.UnmarshalJSON(message)
	if err := s.Validate(v); err != nil {
		t.Errorf("the documented message: %v", err)
	}
	fs, err := apispec.AsyncMessagePayload("NotificationCreated")
	if err != nil {
		t.Fatal(err)
	}
	v, err = apispec.UnmarshalJSON(frame)
	if err != nil {
		t.Fatalf("the documented frame is not JSON: %v", err)
	}
	if err := fs.Validate(v); err != nil {
		t.Errorf("the documented frame: %v", err)
	}
}
