package cli_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// relayedUntilSentinel sends a sentinel on the relay channel and returns
// every relay message heard before it: NOTIFYs arrive in commit order, so
// those are all that committed before the sentinel.
func relayedUntilSentinel(t *testing.T, st *store.Store, listen *pgx.Conn) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.Notify(ctx, store.RelayChannel, []string{"sentinel"}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		n, err := listen.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("relay messages %v, then: %v", out, err)
		}
		if n.Payload == "sentinel" {
			return out
		}
		out = append(out, n.Payload)
	}
}

// signalctl notifications mark makes each change the next of the
// recipient's stream: recorded, and relayed once, with its position and
// counts, to the instances holding the recipient's room.
func TestNotificationsMarkRelaysEachChangeOnceWithItsPosition(t *testing.T) {
	isolate(t)
	st, url := pgtest.Open(t)
	ctx := context.Background()
	a := storeCopies(t, st, "a", []int64{1}, "u1")
	storeCopies(t, st, "b", []int64{2}, "u1")
	if err := st.RegisterInstance(ctx, "other", "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if err := st.ApplyPresence(ctx, "other", store.PresenceChange{RoomsOpened: []string{event.NotificationRoom("u1")}}, false); err != nil {
		t.Fatal(err)
	}
	listen, err := st.Listen(ctx, store.RelayChannel)
	if err != nil {
		t.Fatal(err)
	}
	defer listen.Close(ctx)

	for _, tc := range []struct {
		name   string
		args   []string
		pos    int64
		counts event.Counts
	}{
		{"one", []string{"read", a[0].ID.String()}, 3, event.Counts{Total: 2, Unread: 1, Unseen: 1}},
		{"all", []string{"seen", "--all"}, 4, event.Counts{Total: 2, Unread: 1}},
		{"nothing to change", []string{"read", a[0].ID.String()}, 0, event.Counts{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, append(append([]string{"notifications", "mark", "--recipient", "u1"}, tc.args...), "-o", "json", "--database-url", url)...)
			r.wantCode(t, 0)
			res := decodeJSON[struct {
				Updated int64 `json:"updated"`
			}](t, r.Stdout)
			msgs := relayedUntilSentinel(t, st, listen)
			if tc.pos == 0 {
				if res.Updated != 0 || len(msgs) != 0 {
					t.Errorf("updated %d, relayed %v; want nothing", res.Updated, msgs)
				}
				return
			}
			if res.Updated != 1 || len(msgs) != 1 {
				t.Fatalf("updated %d, relayed %d messages %v; want the change relayed once", res.Updated, len(msgs), msgs)
			}
			var msg relayed
			if err := json.Unmarshal([]byte(msgs[0]), &msg); err != nil || len(msg.Items) != 1 {
				t.Fatalf("relayed %s (%v)", msgs[0], err)
			}
			var f struct {
				Topic  string        `json:"topic"`
				Pos    int64         `json:"pos"`
				Counts *event.Counts `json:"counts"`
			}
			it := msg.Items[0]
			if err := json.Unmarshal(it.Frame, &f); err != nil || it.Room != event.NotificationRoom("u1") || it.Pos != tc.pos ||
				f.Topic != event.TopicNotificationUpdated || f.Pos != tc.pos || f.Counts == nil || *f.Counts != tc.counts {
				t.Errorf("relayed %s, want the updated change at %d with counts %+v", msgs[0], tc.pos, tc.counts)
			}
			if c, pos, err := st.Counts(ctx, "u1"); err != nil || pos != tc.pos || c != tc.counts {
				t.Errorf("counts %+v at %d (%v)", c, pos, err)
			}
		})
	}
}
