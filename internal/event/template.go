package event

import (
	"errors"
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
	return r.RenderLimit(d, 0)
}

// ErrRenderTooLarge is returned by RenderLimit when a template writes more
// than the limit (and wraps it in an *InvalidError with ReasonTooLarge).
var ErrRenderTooLarge = errors.New("the template's output is larger than the limit")

// RenderLimit is Render with content and actionUrl together bounded to
// limit bytes (0: no bound). A template that writes more is stopped as soon
// as it passes the limit, and the message is too large: a template over
// data an attacker chose (a range, a repeated field) could otherwise make
// any amount of text. Then it returns an *InvalidError with ReasonTooLarge
// wrapping ErrRenderTooLarge, and no fallback.
func (r *Renderer) RenderLimit(d *Decoded, limit int) (content, actionURL string, err error) {
	content, actionURL, err = r.render(d, limit)
	if errors.Is(err, ErrRenderTooLarge) {
		return "", "", &InvalidError{Reason: ReasonTooLarge, Detail: fmt.Sprintf("content and actionUrl rendered from the message are larger than %d bytes (ingest.max_row_bytes)", limit), err: err}
	}
	return content, actionURL, err
}

func (r *Renderer) render(d *Decoded, limit int) (content, actionURL string, err error) {
	td := TemplateData{
		EventType: d.EventType, RecipientScope: d.RecipientScope, ActorID: d.ActorID,
		Actor: d.Actor, OrganizerID: d.OrganizerID, MerchantID: d.MerchantID,
		RecipientIDs: d.RecipientIDs, Data: d.DataValue, OccurredAt: d.Occurred,
	}
	if c, ok := r.byType[strings.ToUpper(d.EventType)]; ok {
		content, actionURL, err = c.execute(td, limit)
		if err == nil || errors.Is(err, ErrRenderTooLarge) {
			return content, actionURL, err
		}
	}
	content, actionURL, ferr := r.fallback.execute(td, limit)
	if errors.Is(ferr, ErrRenderTooLarge) {
		return "", "", ferr
	}
	if ferr != nil { // the fallback only reads fields that validation guarantees
		content, actionURL = d.EventType, ""
	}
	return content, actionURL, err
}

func (c compiled) execute(td TemplateData, limit int) (string, string, error) {
	out := &limitedBuilder{left: limit}
	if limit <= 0 {
		out.left = -1
	}
	if err := c.content.Execute(out, td); err != nil {
		return "", "", err
	}
	content := out.String()
	out.Reset()
	if err := c.actionURL.Execute(out, td); err != nil {
		return "", "", err
	}
	return content, strings.TrimSpace(out.String()), nil
}

// limitedBuilder fails a write that would take more than left bytes in
// all (left < 0: no bound); text/template then stops and returns its error.
type limitedBuilder struct {
	strings.Builder
	left int
}

func (b *limitedBuilder) Write(p []byte) (int, error) {
	if b.left >= 0 {
		if len(p) > b.left {
			return 0, ErrRenderTooLarge
		}
		b.left -= len(p)
	}
	return b.Builder.Write(p)
}
