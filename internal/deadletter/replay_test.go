package deadletter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/deadletter"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/ingest"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/relay"
	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// stamped is the records' time: within the retention and not ahead of the
// clock (ingest.max_clock_skew), as a replayed record must be.
var stamped = time.Now().Add(-time.Hour).Truncate(time.Second)

// addDeadLetters stores n dead letters at offsets from..from+n-1: valid
// users messages when good (they become notifications on replay), values
// that are not JSON otherwise.
func addDeadLetters(t *testing.T, st *store.Store, from, n int, good bool) {
	t.Helper()
	var dls []*event.DeadLetter
	for i := from; i < from+n; i++ {
		value := []byte("not json")
		if good {
			value = testkit.Message("users", []string{fmt.Sprintf("u%d", i)}, nil)
		}
		dls = append(dls, &event.DeadLetter{Source: event.Source{Topic: testkit.Topic, Partition: 0, Offset: int64(i), Timestamp: stamped},
			Value: value, Reason: event.ReasonNoRecipients, Detail: "test"})
	}
	if err := st.InTx(context.Background(), func(tx *store.Tx) error { return tx.InsertDeadLetters(context.Background(), dls) }); err != nil {
		t.Fatal(err)
	}
}

func replayer(t *testing.T, st *store.Store, pageSize int) *deadletter.Replayer {
	t.Helper()
	r, err := event.NewRenderer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &deadletter.Replayer{Store: st, PageSize: pageSize, Ingestor: ingest.New(ingest.Options{Store: st, Renderer: r})}
}

func TestReplayWalksPagesAndStopsBetweenThemWhenInterrupted(t *testing.T) {
	t.Parallel()
	st, _ := pgtest.Open(t)
	addDeadLetters(t, st, 0, 23, true)
	addDeadLetters(t, st, 100, 4, false)

	t.Run("an interrupt stops after the page in hand", func(t *testing.T) {
		rp := replayer(t, st, 5)
		ctx, cancel := context.WithCancelCause(context.Background())
		pages := 0
		rp.Progress = func(r *deadletter.Result) {
			pages++
			if pages == 2 {
				cancel(errors.New("ctrl-c"))
			}
		}
		res, err := rp.Replay(ctx, deadletter.Selection{})
		if err == nil || err.Error() != "stopped after 10 of 27 dead letters: ctrl-c" {
			t.Fatalf("err = %v, want a stop after two pages", err)
		}
		if len(res.Replayed) != 10 || res.Notifications != 10 || res.Selected != 27 {
			t.Errorf("result %+v", res)
		}
	})
	t.Run("a rerun goes on where it stopped, and handles only what was waiting", func(t *testing.T) {
		rp := replayer(t, st, 5)
		pages := 0
		rp.Progress = func(*deadletter.Result) {
			pages++
			if pages == 1 {
				addDeadLetters(t, st, 200, 3, true) // arrives during the replay
			}
		}
		res, err := rp.Replay(context.Background(), deadletter.Selection{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Selected != 17 || len(res.Replayed) != 13 || len(res.StillDead) != 4 || res.Reasons[event.ReasonMalformedJSON] != 4 || pages != 4 {
			t.Errorf("result %+v after %d pages", res, pages)
		}
		if n := testkit.Count(t, st, `SELECT count(*) FROM notifications`); n != 23 {
			t.Errorf("%d notifications, want 23: one per good dead letter, none twice", n)
		}
		if n := testkit.Count(t, st, `SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL`); n != 7 {
			t.Errorf("%d waiting, want the 4 still failing and the 3 that arrived meanwhile", n)
		}
	})
	t.Run("ids that are not waiting are named", func(t *testing.T) {
		_, err := replayer(t, st, 5).Replay(context.Background(), deadletter.Selection{IDs: []int64{1, 999999}})
		var nw *deadletter.NotWaitingError
		if !errors.As(err, &nw) || len(nw.IDs) != 2 {
			t.Errorf("err = %v, want ids 1 (replayed) and 999999 (unknown) named", err)
		}
	})
	t.Run("a reason selects its dead letters", func(t *testing.T) {
		res, err := replayer(t, st, 5).Replay(context.Background(), deadletter.Selection{Reason: event.ReasonNoRecipients})
		if err != nil || res.Selected != 3 || len(res.Replayed) != 3 {
			t.Errorf("%+v %v: want the 3 no_recipients ones", res, err)
		}
	})
}

// A replayed notification is the next change of its recipient's stream:
// Pusher relays its created frame, with its position and the counts after
// it, to the instances holding its room, in the transaction that stores it.
func TestReplayedNotificationsArePushedWithTheirPositions(t *testing.T) {
	st, _ := pgtest.Open(t)
	ctx := context.Background()
	r, err := event.NewRenderer(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := relay.Publisher{Store: st, Origin: "test-replay"}
	rp := &deadletter.Replayer{Store: st, PageSize: 10,
		Ingestor: ingest.New(ingest.Options{Store: st, Renderer: r, Pusher: deadletter.Pusher{Publisher: pub}})}
	// u0 has a notification already; another instance holds its room.
	addDeadLetters(t, st, 0, 1, true)
	if _, err := rp.Replay(ctx, deadletter.Selection{}); err != nil {
		t.Fatal(err)
	}
	if err := st.RegisterInstance(ctx, "other", "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if err := st.ApplyPresence(ctx, "other", store.PresenceChange{RoomsOpened: []string{event.NotificationRoom("u0")}}, false); err != nil {
		t.Fatal(err)
	}
	listen, err := st.Listen(ctx, store.RelayChannel)
	if err != nil {
		t.Fatal(err)
	}
	defer listen.Close(ctx)
	// A second dead letter for u0 (another record), and one for u1.
	var dls []*event.DeadLetter
	for i, rcpt := range []string{"u0", "u1"} {
		dls = append(dls, &event.DeadLetter{Source: event.Source{Topic: testkit.Topic, Offset: int64(10 + i), Timestamp: stamped},
			Value: testkit.Message("users", []string{rcpt}, nil), Reason: event.ReasonNoRecipients, Detail: "test"})
	}
	if err := st.InTx(ctx, func(tx *store.Tx) error { return tx.InsertDeadLetters(ctx, dls) }); err != nil {
		t.Fatal(err)
	}
	if res, err := rp.Replay(ctx, deadletter.Selection{}); err != nil || res.Notifications != 2 {
		t.Fatalf("replay %+v, %v", res, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := listen.WaitForNotification(wctx)
	if err != nil {
		t.Fatalf("nothing relayed: %v", err)
	}
	var msg struct {
		Items []struct {
			Room  string          `json:"r"`
			Pos   int64           `json:"s"`
			Frame json.RawMessage `json:"f"`
		} `json:"d"`
	}
	if err := json.Unmarshal([]byte(n.Payload), &msg); err != nil || len(msg.Items) != 1 {
		t.Fatalf("relayed %s (%v): want u0's notification only (u1's room is held nowhere)", n.Payload, err)
	}
	var f struct {
		Topic  string        `json:"topic"`
		Pos    int64         `json:"pos"`
		Counts *event.Counts `json:"counts"`
	}
	it := msg.Items[0]
	if err := json.Unmarshal(it.Frame, &f); err != nil || it.Room != event.NotificationRoom("u0") || it.Pos != 2 || f.Pos != 2 ||
		f.Topic != event.TopicNotificationCreated || f.Counts == nil || *f.Counts != (event.Counts{Total: 2, Unread: 2, Unseen: 2}) {
		t.Errorf("relayed %s, want u0's created change at 2 with its counts", n.Payload)
	}
	if heads, err := st.PeekHeads(ctx, []string{"u0", "u1"}); err != nil || heads["u0"] != 2 || heads["u1"] != 1 {
		t.Errorf("heads %v, %v", heads, err)
	}
}
