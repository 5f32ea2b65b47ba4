package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/store"
	"github.com/signal-notify/signal/internal/testkit"
)

func TestDeadLettersListReplayAfterAMembershipFixAndPurge(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	serverEnv(t, in)
	t.Setenv("SIGNAL_DATABASE_URL", env.DBURL)
	u1 := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1"))
	u1.Welcome()
	p := testkit.Producer(t, env.Broker)
	testkit.Produce(t, p, testkit.Message("org", nil, func(m map[string]any) { m["organizerId"] = "org-9" }), []byte("garbage"))
	testkit.Eventually(t, 10*time.Second, "2 dead letters", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM dead_letters`) == 2
	})

	out, _, code := run(t, "deadletters", "list", "-o", "json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Fatalf("list: %d %s", code, out)
	}
	if list[1]["value"] != "garbage" || list[1]["reason"] != "malformed_json" || list[0]["reason"] != "no_recipients" || list[0]["topic"] != testkit.Topic {
		t.Errorf("list %s", out)
	}
	out, _, _ = run(t, "deadletters", "list")
	if !strings.Contains(out, "no_recipients") || !strings.Contains(out, "REASON") {
		t.Errorf("table %q", out)
	}

	// Fix the cause, replay: the notification is stored and pushed live.
	if _, errOut, code := run(t, "members", "add", "--org", "org-9", "u1"); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := run(t, "deadletters", "replay", "--all", "-o", "json")
	var res struct {
		Replayed      []int64        `json:"replayed"`
		StillDead     []int64        `json:"stillDead"`
		Notifications int            `json:"notifications"`
		Reasons       map[string]int `json:"stillDeadByReason"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("replay: %d %s %s", code, out, errOut)
	}
	if len(res.Replayed) != 1 || len(res.StillDead) != 1 || res.Notifications != 1 || res.Reasons["malformed_json"] != 1 {
		t.Errorf("replay result %+v", res)
	}
	f := u1.Expect("observation/signal/notification/created")
	if !strings.Contains(string(f.Data), "Alice completed a payment") {
		t.Errorf("pushed %s", f.Data)
	}
	out, _, _ = run(t, "deadletters", "list", "-o", "json")
	if json.Unmarshal([]byte(out), &list); len(list) != 1 || list[0]["reason"] != "malformed_json" {
		t.Errorf("waiting after replay: %s", out)
	}
	out, _, _ = run(t, "deadletters", "list", "--replayed", "-o", "json")
	if json.Unmarshal([]byte(out), &list); len(list) != 2 || list[0]["replayedAt"] == nil {
		t.Errorf("all after replay: %s", out)
	}
	// Replaying again changes nothing: the row exists, no second one.
	run(t, "deadletters", "replay", "--all")
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`); n != 1 {
		t.Errorf("rows after a second replay: %d", n)
	}

	if _, _, code := run(t, "deadletters", "replay", "--id", "999999"); code != 1 {
		t.Errorf("replay of an unknown id exited %d", code)
	}
	if _, _, code := run(t, "deadletters", "purge", "--before", "0s"); code != 2 {
		t.Errorf("purge without --yes off a terminal exited %d, want 2", code)
	}
	if _, _, code := run(t, "deadletters", "purge", "--before", "yesterday", "--yes"); code != 2 {
		t.Errorf("purge with a bad time exited %d, want 2", code)
	}
	out, _, code = run(t, "deadletters", "purge", "--before", "0s", "--yes")
	if code != 0 || !strings.Contains(out, "deleted 2") || testkit.Count(t, env.Store, `SELECT count(*) FROM dead_letters`) != 0 {
		t.Errorf("purge: %d %s", code, out)
	}
}

func TestDedupeListsThenRemovesAndARerunFinishesAnInterruptedApply(t *testing.T) {
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	t.Setenv("SIGNAL_DATABASE_URL", env.DBURL)
	p := testkit.Producer(t, env.Broker)
	// A producer that sent twice: the same event in two records.
	twice := testkit.Message("users", []string{"u1", "u2", "u3"}, nil)
	other := testkit.Message("users", []string{"u1"}, paid("another"))
	testkit.Produce(t, p, twice, twice, other)
	testkit.Eventually(t, 10*time.Second, "7 rows", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`) == 7
	})
	ctx := context.Background()
	// u2 read the copy that will be removed.
	var readCopy string
	env.Store.Pool.QueryRow(ctx, `SELECT id::text FROM notifications WHERE recipient_id = 'u2' ORDER BY seq DESC LIMIT 1`).Scan(&readCopy)
	if code, _ := call(t, "POST", in.URL()+"/notifications/"+readCopy+"/read?recipientId=u2", testkit.APIKey, nil); code != 200 {
		t.Fatalf("read: %d", code)
	}

	out, _, code := run(t, "dedupe", "-o", "json")
	var rep struct {
		Applied bool `json:"applied"`
		Groups  []struct {
			RecipientID string   `json:"recipientId"`
			Copies      int      `json:"copies"`
			Remove      []string `json:"remove"`
			AnyRead     bool     `json:"anyRead"`
		} `json:"groups"`
		Rows int `json:"duplicateRows"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Applied || len(rep.Groups) != 3 || rep.Rows != 3 {
		t.Fatalf("dedupe: %d %s", code, out)
	}
	if testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`) != 7 {
		t.Fatal("listing changed rows")
	}
	out, _, _ = run(t, "dedupe")
	if !strings.Contains(out, "RECIPIENT") || !strings.Contains(out, "u3") {
		t.Errorf("table %q", out)
	}
	if _, errOut, code := run(t, "dedupe", "--apply"); code != 2 || !strings.Contains(errOut, "--yes") {
		t.Errorf("--apply off a terminal without --yes: %d %s", code, errOut)
	}

	// An apply interrupted after its first transaction (u1's group) …
	groups, _, err := env.Store.DuplicateGroups(ctx, store.DedupeFilter{}, store.Cursor{}, 1)
	if err != nil || len(groups) != 1 {
		t.Fatal(err)
	}
	if _, err := env.Store.RemoveDuplicates(ctx, groups, nil); err != nil {
		t.Fatal(err)
	}
	// … is finished by running the same command again.
	out, errOut, code := run(t, "dedupe", "--apply", "--yes", "--chunk", "1")
	if code != 0 || strings.Count(out, "removed ") != 2 {
		t.Fatalf("rerun: %d %q %s", code, out, errOut)
	}
	// Removed copies are deleted as the inbox deletes (devices are told):
	// the rows stay, marked deleted, so a redelivery cannot bring them back.
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications n
		WHERE NOT EXISTS (SELECT 1 FROM notification_marks m WHERE m.id = n.id AND m.is_deleted)`); n != 4 {
		t.Errorf("notifications left after dedupe = %d, want one per (event, recipient): 4", n)
	}
	if _, c := call(t, "GET", in.URL()+"/notifications/counts?recipientId=u2", testkit.APIKey, nil); c["unread"] != float64(0) || c["total"] != float64(1) {
		t.Errorf("u2's kept copy must be read, since the removed copy was: %v", c)
	}
	if out, _, _ := run(t, "dedupe", "-o", "json"); !strings.Contains(out, `"groups": []`) {
		t.Errorf("after apply: %s", out)
	}
}
