package event

import (
	"strings"
	"testing"
)

func decode(t *testing.T, s string) *Decoded {
	t.Helper()
	d, err := Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRenderUsesTheEventTypesTemplate(t *testing.T) {
	r, err := NewRenderer(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, msg, content, action string
		wantErr                    bool
	}{
		{"payment with subject and id", strings.Replace(validUsers, `{"subject":"Ticket"}`, `{"subject":"Ticket","id":"p-9"}`, 1), "Alice completed a payment for Ticket", "/payments/p-9", false},
		{"payment without id", validUsers, "Alice completed a payment for Ticket", "", false},
		{"payment without data.payment", strings.Replace(validUsers, `"payment":{"subject":"Ticket"},`, ``, 1), "Alice completed a payment", "", false},
		{"payment is a string: falls back", strings.Replace(validUsers, `{"subject":"Ticket"}`, `"x"`, 1), "Alice: PAYMENT_SUCCESS", "", true},
		{"unknown type: generic fallback", strings.Replace(validUsers, `PAYMENT_SUCCESS`, `REFUND_ISSUED`, 1), "Alice: REFUND_ISSUED", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content, action, err := r.Render(decode(t, tt.msg))
			if content != tt.content || action != tt.action || (err != nil) != tt.wantErr {
				t.Errorf("Render = %q, %q, %v; want %q, %q, error %v", content, action, err, tt.content, tt.action, tt.wantErr)
			}
		})
	}
}

func TestCustomTemplatesOverrideAndAreMatchedWithoutCase(t *testing.T) {
	r, err := NewRenderer(map[string]TemplateText{
		"refund_issued": {Content: "Refund of {{.Data.amount}} by {{.Actor.Name}}", ActionURL: "/refunds/{{.OrganizerID}}"},
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := strings.Replace(validUsers, `PAYMENT_SUCCESS`, `REFUND_ISSUED`, 1)
	content, action, err := r.Render(decode(t, msg))
	if content != "Refund of 12.50 by Alice" || action != "/refunds/org-1" || err != nil {
		t.Errorf("Render = %q, %q, %v", content, action, err)
	}
}

func TestNewRendererRejectsBrokenTemplates(t *testing.T) {
	for name, tt := range map[string]TemplateText{
		"unclosed action": {Content: "{{.Actor.Name"},
		"empty content":   {Content: "  "},
		"bad action url":  {Content: "ok", ActionURL: "{{end}}"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewRenderer(map[string]TemplateText{"X": tt})
			if err == nil || !strings.Contains(err.Error(), "template X") {
				t.Errorf("err = %v, want an error naming template X", err)
			}
		})
	}
}
