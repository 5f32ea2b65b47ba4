package event

import (
	"fmt"
	"sort"
	"strings"
	"text/template"
	"time"
)

// TemplateText is the source of one event type's templates.
type TemplateText struct {
	Content   string `mapstructure:"content" json:"content"`
	ActionURL string `mapstructure:"action_url" json:"action_url"`
}

// DefaultTemplates are built in; configuration may replace or add to them.
var DefaultTemplates = map[string]TemplateText{
	"PAYMENT_SUCCESS": {
		Content:   `{{.Actor.Name}} completed a payment{{with .Data.payment}}{{with .subject}} for {{.}}{{end}}{{end}}`,
		ActionURL: `{{with .Data.payment}}{{with .id}}/payments/{{.}}{{end}}{{end}}`,
	},
}

// FallbackTemplate renders event types that have no template of their own,
// and any message whose own template fails on its data.
var FallbackTemplate = TemplateText{Content: `{{.Actor.Name}}: {{.EventType}}`}

// TemplateData is what a template sees: the message, with data parsed.
type TemplateData struct {
	EventType      string
	RecipientScope string
	ActorID        string
	Actor          Actor
	OrganizerID    string
	MerchantID     string
	RecipientIDs   []string
	Data           map[string]any
	OccurredAt     time.Time
}

type compiled struct {
	content, actionURL *template.Template
}

// Renderer renders content and actionUrl per event type. Template keys are
// matched without regard to case (configuration files lower-case keys).
type Renderer struct {
	byType   map[string]compiled
	fallback compiled
}

// NewRenderer compiles the defaults overlaid with custom templates; a
// template that does not parse is an error naming its event type.
func NewRenderer(custom map[string]TemplateText) (*Renderer, error) {
	texts := make(map[string]TemplateText, len(DefaultTemplates)+len(custom))
	for k, v := range DefaultTemplates {
		texts[strings.ToUpper(k)] = v
	}
	for k, v := range custom {
		texts[strings.ToUpper(k)] = v
	}
	r := &Renderer{byType: make(map[string]compiled, len(texts))}
	var err error
	if r.fallback, err = compile("fallback", FallbackTemplate); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(texts))
	for k := range texts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c, err := compile(k, texts[k])
		if err != nil {
			return nil, err
		}
		r.byType[k] = c
	}
	return r, nil
}

func compile(name string, t TemplateText) (compiled, error) {
	if strings.TrimSpace(t.Content) == "" {
		return compiled{}, fmt.Errorf("template %s: content is empty", name)
	}
	c, err := template.New(name).Option("missingkey=zero").Parse(t.Content)
	if err == nil {
		err = checkFields(c.Tree)
	}
	if err != nil {
		return compiled{}, fmt.Errorf("template %s content: %w", name, err)
	}
	a, err := template.New(name).Option("missingkey=zero").Parse(t.ActionURL)
	if err == nil && a.Tree != nil {
		err = checkFields(a.Tree)
	}
	if err != nil {
		return compiled{}, fmt.Errorf("template %s action_url: %w", name, err)
	}
	return compiled{content: c, actionURL: a}, nil
}

// Render returns the content and actionUrl ("" means null) of d. When the
// event type's template fails on this message's data, the fallback is used
// and the error is returned alongside, for the log: a template problem never
// loses a notification.
func (r *Renderer) Render(d *Decoded) (content, actionURL string, err error) {
	td := TemplateData{
		EventType: d.EventType, RecipientScope: d.RecipientScope, ActorID: d.ActorID,
		Actor: d.Actor, OrganizerID: d.OrganizerID, MerchantID: d.MerchantID,
		RecipientIDs: d.RecipientIDs, Data: d.DataValue, OccurredAt: d.Occurred,
	}
	if c, ok := r.byType[strings.ToUpper(d.EventType)]; ok {
		content, actionURL, err = c.execute(td)
		if err == nil {
			return content, actionURL, nil
		}
	}
	content, actionURL, ferr := r.fallback.execute(td)
	if ferr != nil { // the fallback only reads fields that validation guarantees
		content, actionURL = d.EventType, ""
	}
	return content, actionURL, err
}

func (c compiled) execute(td TemplateData) (string, string, error) {
	var content, action strings.Builder
	if err := c.content.Execute(&content, td); err != nil {
		return "", "", err
	}
	if err := c.actionURL.Execute(&action, td); err != nil {
		return "", "", err
	}
	return content.String(), strings.TrimSpace(action.String()), nil
}
