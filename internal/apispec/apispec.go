package apispec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/signal-notify/signal/api"
)

var (
	openOnce sync.Once
	openMu   sync.Mutex // the validator is not documented as safe for concurrent use
	openV    validator.Validator
	openErr  error
	openDoc  map[string]any
	errorSch *jsonschema.Schema
)

func loadOpenAPI() {
	doc, err := libopenapi.NewDocument(api.OpenAPI)
	if err != nil {
		openErr = fmt.Errorf("api/openapi.yaml: %w", err)
		return
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		openErr = fmt.Errorf("api/openapi.yaml: %w", errors.Join(errs...))
		return
	}
	openV = v
	if openDoc, openErr = parseYAML(api.OpenAPI); openErr != nil {
		return
	}
	errorSch, openErr = compile(openDoc, "openapi.json", "#/components/schemas/Error", jsonschema.Draft2020)
}

// OpenAPIDocument checks api/openapi.yaml against the OpenAPI 3.1
// specification's own schema.
func OpenAPIDocument() error {
	openOnce.Do(loadOpenAPI)
	if openErr != nil {
		return openErr
	}
	openMu.Lock()
	defer openMu.Unlock()
	if ok, errs := openV.ValidateDocument(); !ok {
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, fmt.Sprintf("line %d: %s: %s", e.SpecLine, e.Message, e.Reason))
			for _, se := range e.SchemaValidationErrors {
				msgs = append(msgs, fmt.Sprintf("  line %d: %s: %s", se.Line, se.FieldPath, se.Reason))
			}
		}
		return errors.New("api/openapi.yaml is not a valid OpenAPI document:\n" + strings.Join(msgs, "\n"))
	}
	return nil
}

// CheckResponse validates one response (its status, headers and body)
// against api/openapi.yaml. A request to a path the document does not have
// must get the API's error body with 404 or 405.
func CheckResponse(req *http.Request, status int, header http.Header, body []byte) error {
	openOnce.Do(loadOpenAPI)
	if openErr != nil {
		return openErr
	}
	resp := &http.Response{StatusCode: status, Header: header, Body: io.NopCloser(bytes.NewReader(body)), Request: req}
	openMu.Lock()
	ok, errs := openV.ValidateHttpResponse(req, resp)
	openMu.Unlock()
	if ok {
		return nil
	}
	if len(errs) > 0 && strings.Contains(errs[0].Message, "not found") && (status == 404 || status == 405) {
		// No route: the answer is still the API's error body.
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("%s %s → %d: the body is not JSON: %q", req.Method, req.URL, status, body)
		}
		if err := errorSch.Validate(v); err != nil {
			return fmt.Errorf("%s %s → %d: not the API's error body: %v", req.Method, req.URL, status, err)
		}
		return nil
	}
	var msgs []string
	for _, e := range errs {
		m := e.Message + ": " + e.Reason
		for _, se := range e.SchemaValidationErrors {
			m += "\n    " + se.FieldPath + ": " + se.Reason
		}
		msgs = append(msgs, m)
	}
	shown := string(body)
	if len(shown) > 300 {
		shown = shown[:300] + "…"
	}
	return fmt.Errorf("%s %s → %d %s does not match api/openapi.yaml:\n  %s", req.Method, req.URL, status, shown, strings.Join(msgs, "\n  "))
}

// Operations lists "METHOD /path" of every operation under paths.
func Operations() ([]string, error) {
	doc, err := parseYAML(api.OpenAPI)
	if err != nil {
		return nil, err
	}
	paths, _ := doc["paths"].(map[string]any)
	var out []string
	for p, item := range paths {
		ops, _ := item.(map[string]any)
		if ref, ok := ops["$ref"].(string); ok { // a path item written under components
			ops, _ = resolve(doc, ref).(map[string]any)
		}
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				out = append(out, strings.ToUpper(m)+" "+p)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// resolve follows a local reference ("#/a/b/c") in doc; nil when it
// points at nothing.
func resolve(doc map[string]any, ref string) any {
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// AsyncAPI returns api/asyncapi.yaml decoded.
func AsyncAPI() (map[string]any, error) { return parseYAML(api.AsyncAPI) }

// OpenAPI returns api/openapi.yaml decoded.
func OpenAPI() (map[string]any, error) { return parseYAML(api.OpenAPI) }

var (
	asyncMu      sync.Mutex
	asyncSchemas = map[string]*jsonschema.Schema{}
)

// AsyncSchema compiles components.schemas.<name> of api/asyncapi.yaml (JSON
// Schema draft-07, which AsyncAPI Schema extends), formats asserted.
func AsyncSchema(name string) (*jsonschema.Schema, error) {
	asyncMu.Lock()
	defer asyncMu.Unlock()
	if s := asyncSchemas[name]; s != nil {
		return s, nil
	}
	doc, err := parseYAML(api.AsyncAPI)
	if err != nil {
		return nil, err
	}
	s, err := compile(doc, "asyncapi.json", "#/components/schemas/"+name, jsonschema.Draft7)
	if err != nil {
		return nil, err
	}
	asyncSchemas[name] = s
	return s, nil
}

// compile compiles the schema at fragment of doc, with $refs resolved in doc.
func compile(doc map[string]any, name, fragment string, draft *jsonschema.Draft) (*jsonschema.Schema, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(draft)
	c.AssertFormat()
	url := "file:///api/" + name
	if err := c.AddResource(url, v); err != nil {
		return nil, err
	}
	s, err := c.Compile(url + fragment)
	if err != nil {
		return nil, fmt.Errorf("compile %s%s: %w", name, fragment, err)
	}
	return s, nil
}

// parseYAML decodes a YAML document into JSON-compatible values.
func parseYAML(b []byte) (map[string]any, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// AsyncMessagePayload compiles the payload schema of components.messages.<name>.
func AsyncMessagePayload(name string) (*jsonschema.Schema, error) {
	doc, err := parseYAML(api.AsyncAPI)
	if err != nil {
		return nil, err
	}
	return compile(doc, "asyncapi.json", "#/components/messages/"+name+"/payload", jsonschema.Draft7)
}

// UnmarshalJSON decodes JSON the way the schemas expect (numbers kept exact).
func UnmarshalJSON(b []byte) (any, error) { return jsonschema.UnmarshalJSON(bytes.NewReader(b)) }
