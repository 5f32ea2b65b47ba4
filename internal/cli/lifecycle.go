package cli

import (
	"github.com/spf13/cobra"

	"github.com/signal-notify/signal/internal/event"
)

// LifecycleFlags are the message's optional lifecycle fields, shared by
// produce and notify: --event-id (retract and update it later),
// --expires-at (when it leaves the inbox) and --group-key (collapse with
// others of the group).
type LifecycleFlags struct {
	EventID   string
	ExpiresAt string
	GroupKey  string
}

// addLifecycleFlags declares the lifecycle flags on cmd.
func addLifecycleFlags(cmd *cobra.Command, l *LifecycleFlags) {
	f := cmd.Flags()
	f.StringVar(&l.EventID, "event-id", "", "eventId: the producer's id of the event (DELETE/PATCH /events/{eventId})")
	f.StringVar(&l.ExpiresAt, "expires-at", "", "expiresAt, RFC 3339: the notification leaves the inbox then")
	f.StringVar(&l.GroupKey, "group-key", "", "groupKey: collapse with the recipient's notifications of the group (notifications.group_window)")
	for _, name := range []string{"event-id", "expires-at", "group-key"} {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.NoFileCompletions)
	}
}

// apply sets the flags given on m (validation is Decode's, as serve's).
func (l LifecycleFlags) apply(m *event.Message) {
	m.EventID, m.ExpiresAt, m.Grouping = l.EventID, l.ExpiresAt, l.GroupKey
}
