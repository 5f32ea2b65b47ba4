package config

import (
	"fmt"
	"strings"
)

// Reference markers delimit the generated table in docs/operations.md.
const (
	ReferenceBegin = "<!-- config-reference:begin (generated from internal/config/config.go: go test ./internal/config -update) -->"
	ReferenceEnd   = "<!-- config-reference:end -->"
)

// Reference is the configuration reference as a Markdown table, generated
// from the Config struct's tags.
func Reference() string {
	var b strings.Builder
	b.WriteString("| key | environment | type | default | description |\n|---|---|---|---|---|\n")
	for _, f := range Fields() {
		def := f.Default
		switch {
		case def == "" && f.Type == "list":
			def = "none"
		case def == "":
			def = "—"
		default:
			def = "`" + def + "`"
		}
		env := "—"
		if f.Env != "" {
			env = "`" + f.Env + "`"
		}
		desc := f.Desc
		if f.Secret {
			desc += " (secret: prefer the environment)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", f.Key, env, f.Type, def, strings.ReplaceAll(desc, "|", "\\|"))
	}
	return b.String()
}
