package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/store"
)

// storeCopies stores one copy of the same event per offset for each
// recipient, each record in its own transaction, and returns the rows.
func storeCopies(t *testing.T, st *store.Store, key string, offsets []int64, recipients ...string) []*event.Row {
	t.Helper()
	ctx := context.Background()
	ts := time.Now().UTC()
	if err := st.EnsurePartitions(ctx, []time.Time{ts}); err != nil {
		t.Fatal(err)
	}
	var all []*event.Row
	for _, off := range offsets {
		src := event.Source{Topic: "t", Offset: off, Timestamp: ts}
		var rows []*event.Row
		for _, r := range recipients {
			rows = append(rows, &event.Row{
				ID: event.NotificationID(src, r), RecipientID: r, Type: "PAYMENT_SUCCESS", OrganizerID: "org-1",
				ActorID: "a1", Actor: event.Actor{ID: "a1", Name: "Alice", Type: "user"}, Content: "hello",
				Data: json.RawMessage(`{"k":1}`), OccurredAt: ts, EventKey: []byte(strings.Repeat(key, 16)), Source: src,
			})
		}
		if err := st.InTx(ctx, func(tx *store.Tx) error { _, err := tx.InsertNotifications(ctx, rows); return err }); err != nil {
			t.Fatal(err)
		}
		all = append(all, rows...)
	}
	return all
}

// relayed is a relay message as instances receive it (internal/relay).
type relayed struct {
	Kind  string `json:"k"`
	Items []struct {
		Room  string          `json:"r"`
		Pos   int64           `json:"s"`
		Frame json.RawMessage `json:"f"`
	} `json:"d"`
}

// signalctl dedupe lists duplicate groups, and with --apply deletes the
// later copies as the inbox does: rows stay, each recipient's stream gets
// the change (relayed to the instances holding its room), the kept copy is
// read when a deleted one was, and a rerun finds nothing left.
func TestDedupeDeletesCopiesAsStreamChanges(t *testing.T) {
	isolate(t)
	st, url := pgtest.Open(t)
	ctx := context.Background()
	copies := storeCopies(t, st, "a", []int64{1, 2}, "u1", "u2") // u1, u2 at 1; u1, u2 at 2
	storeCopies(t, st, "b", []int64{3}, "u1")                    // another event
	if _, err := st.Mark(ctx, "u2", event.OpRead, []uuid.UUID{copies[3].ID}, nil); err != nil {
		t.Fatal(err)
	}
	// Another instance holds u1's room.
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

	r := run(t, "dedupe", "-o", "json", "--database-url", url)
	r.wantCode(t, 0)
	rep := decodeJSON[struct {
		Applied bool `json:"applied"`
		Groups  []struct {
			RecipientID string      `json:"recipientId"`
			Copies      int         `json:"copies"`
			Keep        uuid.UUID   `json:"keep"`
			Remove      []uuid.UUID `json:"remove"`
			AnyRead     bool        `json:"anyRead"`
		} `json:"groups"`
		Rows    int         `json:"duplicateRows"`
		Removed []uuid.UUID `json:"removed"`
	}](t, r.Stdout)
	if rep.Applied || len(rep.Groups) != 2 || rep.Rows != 2 || len(rep.Removed) != 0 {
		t.Fatalf("dedupe -o json: %+v", rep)
	}
	for i, g := range rep.Groups {
		if want := copies[i]; g.RecipientID != want.RecipientID || g.Copies != 2 || g.Keep != want.ID ||
			!slices.Equal(g.Remove, []uuid.UUID{copies[i+2].ID}) || g.AnyRead != (i == 1) {
			t.Errorf("group %d: %+v", i, g)
		}
	}
	r = run(t, "dedupe", "--database-url", url)
	r.wantCode(t, 0)
	r.wantStderr(t, "2 group(s), 2 duplicate row(s). Nothing changed: run with --apply to remove them.")
	if !strings.Contains(r.Stdout, "RECIPIENT") || !strings.Contains(r.Stdout, "u2") {
		t.Errorf("table %q", r.Stdout)
	}
	r = run(t, "dedupe", "--apply", "--database-url", url)
	r.wantCode(t, 2)
	r.wantStderr(t, "--yes")
	heads, _ := st.PeekHeads(ctx, []string{"u1", "u2"})
	if heads["u1"] != 3 || heads["u2"] != 3 {
		t.Fatalf("heads before the apply %v: the listing changed something", heads)
	}

	r = run(t, "dedupe", "--apply", "--yes", "--database-url", url)
	r.wantCode(t, 0)
	if want := fmt.Sprintf("removed %s\nremoved %s\n", copies[2].ID, copies[3].ID); r.Stdout != want {
		t.Errorf("stdout %q, want %q", r.Stdout, want)
	}
	r.wantStderr(t, "✓ removed 2 duplicate row(s) in 2 group(s).")
	var rows int
	if err := st.Pool.QueryRow(ctx, `SELECT count(*) FROM notifications`).Scan(&rows); err != nil || rows != 5 {
		t.Errorf("%d rows (%v), want the 5: copies are deleted, not removed", rows, err)
	}
	for i, c := range copies {
		n, err := st.Notification(ctx, c.RecipientID, c.ID)
		if err != nil || n.IsDeleted != (i >= 2) || n.IsRead != (i == 1 || i == 3) {
			t.Errorf("copy %d (%s): %+v, %v", i, c.RecipientID, n, err)
		}
	}
	for rc, want := range map[string]event.Counts{"u1": {Total: 2, Unread: 2, Unseen: 2}, "u2": {Total: 1}} {
		c, pos, err := st.Counts(ctx, rc)
		if err != nil || c != want {
			t.Errorf("%s: counts %+v at %d (%v), want %+v", rc, c, pos, err, want)
		}
	}
	// u1's delete is its stream's next change, relayed to the instance
	// holding its room; u2's room is held nowhere else.
	heads, _ = st.PeekHeads(ctx, []string{"u1", "u2"})
	if heads["u1"] != 4 || heads["u2"] != 5 {
		t.Errorf("heads after the apply %v, want u1 at 4 (delete), u2 at 5 (read, delete)", heads)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := listen.WaitForNotification(wctx)
	if err != nil {
		t.Fatalf("no relay message: %v", err)
	}
	var msg relayed
	if err := json.Unmarshal([]byte(n.Payload), &msg); err != nil || len(msg.Items) != 1 {
		t.Fatalf("relayed %s (%v)", n.Payload, err)
	}
	it := msg.Items[0]
	var f struct {
		Topic string            `json:"topic"`
		Pos   int64             `json:"pos"`
		Data  event.StateChange `json:"data"`
	}
	if err := json.Unmarshal(it.Frame, &f); err != nil || it.Room != event.NotificationRoom("u1") || it.Pos != 4 || f.Pos != 4 ||
		f.Topic != event.TopicNotificationUpdated || f.Data.IsDeleted == nil || !*f.Data.IsDeleted || !slices.Equal(f.Data.IDs, []string{copies[2].ID.String()}) {
		t.Errorf("relayed %s", n.Payload)
	}

	// Nothing left: a rerun changes nothing.
	r = run(t, "dedupe", "--apply", "--yes", "--database-url", url)
	r.wantCode(t, 0)
	r.wantStderr(t, "No duplicates: nothing to remove.")
	r = run(t, "dedupe", "-o", "json", "--database-url", url)
	r.wantCode(t, 0)
	if !strings.Contains(r.Stdout, `"groups": []`) {
		t.Errorf("after the apply: %s", r.Stdout)
	}
	if again, _ := st.PeekHeads(ctx, []string{"u1", "u2"}); again["u1"] != 4 || again["u2"] != 5 {
		t.Errorf("heads after a rerun %v", again)
	}
}
