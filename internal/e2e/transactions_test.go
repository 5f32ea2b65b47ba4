package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/testkit"
)

// A transactional producer's records become notifications only once its
// transaction commits: an aborted transaction (a payment rolled back)
// never notifies anyone, and an open one waits (read_committed).
func TestOnlyCommittedTransactionsBecomeNotifications(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	in := env.Serve(t, nil)
	c := testkit.Dial(t, in.WSURL(), testkit.Token(t, "u1"))
	c.Welcome()
	txn, err := kgo.NewClient(kgo.SeedBrokers(env.Broker), kgo.DefaultProduceTopic(testkit.Topic),
		kgo.TransactionalID("payments-1"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inTransaction := func(subject string, end kgo.TransactionEndTry, before func()) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		rec := &kgo.Record{Key: []byte("org-1"), Value: testkit.Message("users", []string{"u1"}, paid(subject))}
		if err := txn.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if before != nil {
			before()
		}
		if err := txn.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	subjectOf := func(f testkit.Frame) string {
		for _, s := range []string{"rolled back", "open then committed", "committed"} {
			if strings.Contains(string(f.Data), `"subject":"`+s+`"`) {
				return s
			}
		}
		return string(f.Data)
	}

	inTransaction("rolled back", kgo.TryAbort, nil)
	inTransaction("open then committed", kgo.TryCommit, func() {
		c.Quiet(time.Second) // nothing of an open transaction is delivered
	})
	inTransaction("committed", kgo.TryCommit, nil)
	for _, want := range []string{"open then committed", "committed"} {
		if got := subjectOf(c.Expect("observation/signal/notification/created")); got != want {
			t.Fatalf("frame %q, want %q", got, want)
		}
	}
	c.Quiet(500 * time.Millisecond)
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications WHERE data->'payment'->>'subject' = 'rolled back'`); n != 0 {
		t.Errorf("%d rows of the aborted transaction", n)
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM notifications`); n != 2 {
		t.Errorf("%d rows, want the 2 committed", n)
	}
	if n := testkit.Count(t, env.Store, `SELECT count(*) FROM dead_letters`); n != 0 {
		t.Errorf("%d dead letters: transaction markers are not records", n)
	}
}
