package config

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the configuration reference in docs/operations.md")

func TestOperationsGuideHasTheCurrentConfigurationReference(t *testing.T) {
	const path = "../../docs/operations.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, ReferenceBegin), strings.Index(doc, ReferenceEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q … %q block", path, ReferenceBegin, ReferenceEnd)
	}
	want := doc[:i] + ReferenceBegin + "\n" + Reference() + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the configuration reference in %s is stale: run go test ./internal/config -update", path)
}

func TestExampleConfigIsCurrentAndLoads(t *testing.T) {
	const path = "../../packaging/signal.yaml"
	want := ExampleYAML()
	b, err := os.ReadFile(path)
	if err != nil && !*update {
		t.Fatal(err)
	}
	if string(b) != want {
		if !*update {
			t.Fatalf("%s is stale: run go test ./internal/config -update", path)
		}
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Uncommenting every key must give a valid file with the same defaults.
	// (Only the lines of keys: a wrapped description may start with "word:",
	// which would now be refused as an unknown key.)
	leaves := map[string]bool{}
	for _, f := range Fields() {
		leaves[f.Key[strings.LastIndex(f.Key, ".")+1:]] = true
	}
	key := regexp.MustCompile(`(?m)^(\s+)# ([a-z_]+): (.*)$`)
	uncommented := key.ReplaceAllStringFunc(want, func(line string) string {
		m := key.FindStringSubmatch(line)
		if !leaves[m[2]] {
			return line
		}
		return m[1] + m[2] + ": " + m[3]
	})
	p := t.TempDir() + "/all.yaml"
	os.WriteFile(p, []byte(uncommented), 0o600)
	t.Setenv(EnvConfigFile, "")
	all, err := Load(p, nil)
	if err != nil {
		t.Fatalf("the example with every key uncommented does not load: %v", err)
	}
	def, _ := Load("", nil)
	if all.Kafka.Topic != def.Kafka.Topic || all.WebSocket.QueueBytes != def.WebSocket.QueueBytes || all.Ingest.RepushWindow != def.Ingest.RepushWindow {
		t.Errorf("defaults in the example differ from the code's")
	}
}
