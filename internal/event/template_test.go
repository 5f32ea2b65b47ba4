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

// A misspelled field of the message fails on every message, so it is
// refused when the templates load, with the field it was meant to be; what
// only a message can tell (the keys of .Data) is not judged (issue 27).
func TestTemplatesNamingFieldsTheMessageDoesNotHaveAreRefused(t *testing.T) {
	for tmpl, want := range map[string]string{
		"{{.Actor.Nmae}} paid":                          "{{.Actor.Nmae}}: Actor has no field Nmae (did you mean Name?)",
		"{{.EventTyp}}":                                 "{{.EventTyp}}: the message has no field EventTyp (did you mean EventType?)",
		"{{with .Actor}}{{.Nme}}{{end}}":                "{{.Nme}}: Actor has no field Nme (did you mean Name?)",
		"{{if .OrganizerID}}{{$.Actr.Name}}{{end}}":     "{{$.Actr.Name}}: the message has no field Actr (did you mean Actor?)",
		"{{range .RecipientIDs}}{{.}}{{end}}{{.Dta.x}}": "the message has no field Dta (did you mean Data?)",
		"{{printf \"%s\" .Actor.Tpye}}":                 "Actor has no field Tpye (did you mean Type?)",
		"{{(.Actor).Naem}}":                             "Actor has no field Naem",
	} {
		_, err := NewRenderer(map[string]TemplateText{"REFUND": {Content: tmpl}})
		if err == nil || !strings.Contains(err.Error(), "template REFUND content: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", tmpl, err, want)
		}
	}
	_, err := NewRenderer(map[string]TemplateText{"REFUND": {Content: "ok", ActionURL: "/r/{{.Data.id}}/{{.MerchnatID}}"}})
	if err == nil || !strings.Contains(err.Error(), "template REFUND action_url: ") || !strings.Contains(err.Error(), "did you mean MerchantID?") {
		t.Errorf("action_url: err = %v", err)
	}
	for _, ok := range []string{
		"{{.Actor.Name}} refunded {{.Data.amount}} {{.Data.a.b.c}}",
		"{{with .Data.payment}}{{.subject}}{{end}}",
		"{{.OccurredAt.Format \"2006-01-02\"}} {{.OccurredAt.UTC.Year}}",
		"{{range $i, $r := .RecipientIDs}}{{$i}}{{$r}}{{end}}",
		"{{range .Data.items}}{{.name}}{{end}}",
		"{{len .RecipientIDs}} {{index .Data \"k\"}}",
	} {
		if _, err := NewRenderer(map[string]TemplateText{"X": {Content: ok}}); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
