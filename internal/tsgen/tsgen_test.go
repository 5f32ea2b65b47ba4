package tsgen

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signal-notify/signal/api"
)

var update = flag.Bool("update", false, "write clients/js/src/gen from the specs")

const jsDir = "../../clients/js"

// TestGeneratedTypesAreCurrent fails when api/openapi.yaml or
// api/asyncapi.yaml changed and the client's types were not regenerated.
func TestGeneratedTypesAreCurrent(t *testing.T) {
	files, err := Files(api.OpenAPI, api.AsyncAPI)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range files {
		full := filepath.Join(jsDir, path)
		if *update {
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(full)
		if err != nil {
			t.Fatalf("%v: run make types", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("clients/js/%s is not what the specs generate: run make types and commit it", path)
		}
	}
}

func TestTypesOfTheSchemas(t *testing.T) {
	files, err := Files(api.OpenAPI, api.AsyncAPI)
	if err != nil {
		t.Fatal(err)
	}
	rest, frames := string(files["src/gen/rest.ts"]), string(files["src/gen/frames.ts"])
	for _, want := range []string{
		"export type InboxItem = {\n",
		"  organizerId: string | null;\n",
		"export type ErrorCode = \"bad_request\" | ",
		"  nextCursor: string | null;\n",
	} {
		if !strings.Contains(rest, want) {
			t.Errorf("rest.ts lacks %q", want)
		}
	}
	for _, want := range []string{
		"export type WelcomeMessage = ServerFrame & {\n  topic?: \"signal/system/welcome\";\n  data?: WelcomeData;\n};",
		"export type UpdatedData = {\n",
		"  all?: true;\n",
	} {
		if !strings.Contains(frames, want) {
			t.Errorf("frames.ts lacks %q", want)
		}
	}
	// A keyword the generator cannot express is an error, not a wrong type.
	if _, err := Files([]byte("components:\n  schemas:\n    X: {type: object, patternProperties: {a: {}}}\n"), api.AsyncAPI); err == nil || !strings.Contains(err.Error(), "patternProperties") {
		t.Errorf("unsupported keyword: err %v", err)
	}
}
