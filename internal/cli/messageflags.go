package cli

import (
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/signal-notify/signal/internal/event"
)

// MessageFlags build one TActivityNotificationMessage from flags. produce
// (to Kafka) and notify (to POST /notifications) declare the same ones, so
// a message a tester writes for one works for the other.
type MessageFlags struct {
	Scope      string
	Recipients []string
	Organizer  string
	Merchant   string
	Actor      string
	ActorName  string
	ActorType  string
	Type       string
	Data       string
	OccurredAt string
	// Lifecycle: --event-id (retract and update it later), --expires-at
	// (when it leaves the inbox) and --group-key (collapse with others of
	// the group).
	EventID   string
	ExpiresAt string
	GroupKey  string
}

// messageFlagNames are the flags addMessageFlags declares.
var messageFlagNames = []string{"scope", "recipients", "organizer", "merchant", "actor", "actor-name", "actor-type",
	"type", "data", "occurred-at", "event-id", "expires-at", "group-key"}

// addMessageFlags declares the message flags on cmd, with defaultData as
// --data's default.
func addMessageFlags(cmd *cobra.Command, g *globals, m *MessageFlags, defaultData string) {
	f := cmd.Flags()
	f.StringVar(&m.Scope, "scope", event.ScopeUsers, "recipientScope: users, org or merchant")
	f.StringSliceVar(&m.Recipients, "recipients", nil, "recipientIds (scope users), comma-separated or repeated")
	f.StringVar(&m.Organizer, "organizer", "org-1", "organizerId")
	f.StringVar(&m.Merchant, "merchant", "", "merchantId (required for scope merchant)")
	f.StringVar(&m.Actor, "actor", "qa", "actorId (also actor.id)")
	f.StringVar(&m.ActorName, "actor-name", "QA", "actor.name")
	f.StringVar(&m.ActorType, "actor-type", "user", "actor.type")
	f.StringVar(&m.Type, "type", "PAYMENT_SUCCESS", "eventType")
	f.StringVar(&m.Data, "data", defaultData, "data: a JSON object, @file, or - for stdin")
	f.StringVar(&m.OccurredAt, "occurred-at", "", "occurredAt, RFC 3339 (default: now)")
	f.StringVar(&m.EventID, "event-id", "", "eventId: the producer's id of the event (DELETE/PATCH /events/{eventId})")
	f.StringVar(&m.ExpiresAt, "expires-at", "", "expiresAt, RFC 3339: the notification leaves the inbox then")
	f.StringVar(&m.GroupKey, "group-key", "", "groupKey: collapse with the recipient's notifications of the group (notifications.group_window)")
	_ = cmd.RegisterFlagCompletionFunc("scope", fixedValues(event.Scopes...))
	_ = cmd.RegisterFlagCompletionFunc("type", fixedValues("PAYMENT_SUCCESS"))
	_ = cmd.RegisterFlagCompletionFunc("recipients", completeRecipients(g))
	for _, name := range []string{"organizer", "merchant", "actor", "actor-name", "actor-type", "occurred-at", "event-id", "expires-at", "group-key"} {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.NoFileCompletions)
	}
}

// given reports whether any message flag was set on cmd's command line.
func (m *MessageFlags) given(cmd *cobra.Command) bool {
	for _, name := range messageFlagNames {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

// build returns the message the flags describe, --data read from in when
// it is -, occurredAt now unless given (validation is Decode's, as serve's).
func (m *MessageFlags) build(in io.Reader, now time.Time) (event.Message, error) {
	data, err := readDataArg(m.Data, in)
	if err != nil {
		return event.Message{}, err
	}
	occurred := m.OccurredAt
	if occurred == "" {
		occurred = now.UTC().Format(time.RFC3339Nano)
	}
	msg := event.Message{
		EventType: m.Type, RecipientScope: m.Scope, ActorID: m.Actor,
		Actor:       event.Actor{ID: m.Actor, Name: m.ActorName, Type: m.ActorType},
		OrganizerID: m.Organizer, MerchantID: m.Merchant, Data: data, OccurredAt: occurred,
		EventID: m.EventID, ExpiresAt: m.ExpiresAt, Grouping: m.GroupKey,
	}
	if m.Scope == event.ScopeUsers {
		msg.RecipientIDs = m.Recipients
	}
	return msg, nil
}
