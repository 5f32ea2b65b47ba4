package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/testkit"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Two instances with the default settings (6 s session) share the topic's
// partitions within seconds, and a message reaches its recipient wherever
// it was consumed.
func TestTwoInstancesShareTheConsumerGroup(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	a := env.Serve(t, nil)
	time.Sleep(time.Second) // B joins a group that is already stable
	b := env.Serve(t, nil)
	start := time.Now()
	testkit.Eventually(t, 8*time.Second, "both instances to own partitions", func() bool {
		_, sa := call(t, "GET", a.URL()+"/status", testkit.APIKey, nil)
		_, sb := call(t, "GET", b.URL()+"/status", testkit.APIKey, nil)
		ca, _ := sa["consumer"].(map[string]any)
		cb, _ := sb["consumer"].(map[string]any)
		pa, _ := ca["partitionsOwned"].(float64)
		pb, _ := cb["partitionsOwned"].(float64)
		return pa > 0 && pb > 0 && pa+pb == 4
	})
	t.Logf("partitions shared %s after the second instance was ready", time.Since(start).Round(time.Millisecond))
	onA := testkit.Dial(t, a.WSURL(), testkit.Token(t, "u1"))
	onB := testkit.Dial(t, b.WSURL(), testkit.Token(t, "u2"))
	onA.Welcome()
	onB.Welcome()
	p := testkit.Producer(t, env.Broker)
	for i := 0; i < 20; i++ { // keys spread over the partitions of both instances
		rec := &kgo.Record{Key: []byte(fmt.Sprintf("org-%d", i)), Value: testkit.Message("users", []string{"u1", "u2"}, nil)}
		if err := p.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		onA.Expect("observation/signal/notification/created")
		onB.Expect("observation/signal/notification/created")
	}
	onA.Quiet(200 * time.Millisecond)
	onB.Quiet(0)
	if n := testkit.Count(t, env.Store, `SELECT count(DISTINCT source_partition) FROM notifications`); n < 2 {
		t.Errorf("messages landed on %d partition(s): the test needs several", n)
	}
}
