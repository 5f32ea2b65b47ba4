package config

import (
	"fmt"
	"strings"
)

// exampleHeader opens packaging/signal.yaml.
const exampleHeader = `# /etc/signal/signal.yaml: configuration of ` + "`signalctl serve`" + ` (signal.service).
# Generated from internal/config/config.go (go test ./internal/config -update).
#
# Precedence: command-line flag > environment > this file > built-in default.
# Every key is listed with its default, commented out, so a later release's
# defaults still apply: uncomment what you change.
#
# Secrets do not belong here. Put them in /etc/signal/signal.env, which
# systemd reads as root before starting the service (create it owned by
# root, mode 0600), one VARIABLE=value a line:
#
#   SIGNAL_AUTH_JWT_SECRET=...            (auth.jwt_secret, 32 bytes or more:
#                                          openssl rand -base64 32)
#   SIGNAL_API_KEYS=key1,key2             (auth.api_keys, 24 characters or
#                                          more each)
#   SIGNAL_DATABASE_URL=postgres://signal:PASSWORD@db.internal:5432/signal?sslmode=verify-full
#   SIGNAL_KAFKA_SASL_PASSWORD=...        (kafka.sasl.password)
#   SIGNAL_KAFKA_BROKERS=k1:9092,k2:9092  (or kafka.brokers below)
`

// exampleFooter shows a template, since the map has no default entries.
const exampleFooter = `
# Per-eventType templates (Go text/template over the message: .EventType,
# .Actor.Name, .OrganizerID, .MerchantID, .Data, .OccurredAt, …). Keys are
# matched without regard to case. PAYMENT_SUCCESS and a generic fallback are
# built in; a template that fails on a message's data falls back, it never
# loses the notification.
# templates:
#   REFUND_ISSUED:
#     content: "{{.Actor.Name}} refunded {{.Data.amount}}"
#     action_url: "/refunds/{{.Data.id}}"
`

// ExampleYAML is the annotated example configuration of packaging/signal.yaml.
func ExampleYAML() string {
	var b strings.Builder
	b.WriteString(exampleHeader)
	var open []string // the sections the previous key was in
	for _, f := range Fields() {
		if f.Type == "map" {
			continue // templates: see the footer
		}
		parts := strings.Split(f.Key, ".")
		sections, leaf := parts[:len(parts)-1], parts[len(parts)-1]
		common := 0
		for common < len(open) && common < len(sections) && open[common] == sections[common] {
			common++
		}
		for i := common; i < len(sections); i++ {
			if i == 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "%s%s:\n", strings.Repeat("  ", i), sections[i])
		}
		open = sections
		indent := strings.Repeat("  ", len(sections))
		desc := f.Desc
		if f.Env != "" {
			desc += " (" + f.Env + ")"
		}
		for _, line := range wrap(desc, 76-len(indent)) {
			fmt.Fprintf(&b, "%s# %s\n", indent, line)
		}
		switch {
		case f.Default != "":
			fmt.Fprintf(&b, "%s# %s: %s\n", indent, leaf, yamlScalar(f.Default))
		case f.Type == "list":
			fmt.Fprintf(&b, "%s# %s: []\n", indent, leaf)
		default:
			fmt.Fprintf(&b, "%s# %s: \"\"\n", indent, leaf)
		}
	}
	b.WriteString(exampleFooter)
	return b.String()
}

func yamlScalar(s string) string {
	if strings.ContainsAny(s, ":#{}[],&*!|>'\"%@`") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}
