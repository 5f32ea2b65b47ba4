package e2e

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/testkit"
)

func TestADatabaseOutageMidStreamLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("outage test: runs in make test, not with -short")
	}
	env, db := clusterEnv(t) // a cluster of this test's own, to stop and start
	in := env.Serve(t, nil)
	client := testkit.Dial(t, in.WSURL(), testkit.Token(t, "r5"))
	client.Welcome()

	const messages = 3000
	produced := produceSteadily(t, env.Broker, messages, 1000)
	time.Sleep(700 * time.Millisecond)
	db.Stop()
	outageStart := time.Now()
	testkit.Eventually(t, 10*time.Second, "/readyz to report the database down", func() bool {
		code, body := call(t, "GET", in.URL()+"/readyz", "", nil)
		checks, _ := body["checks"].(map[string]any)
		check, _ := checks["database"].(string)
		if code == http.StatusServiceUnavailable && check != "ok" && check != "" {
			// No credential is needed for /readyz: it names the failing
			// check, never the database's user, host or port.
			raw, _ := json.Marshal(body)
			for _, secret := range []string{"postgres", "127.0.0.1", strconv.Itoa(db.Port)} {
				if strings.Contains(string(raw), secret) {
					t.Errorf("/readyz shows %q during the outage: %s", secret, raw)
				}
			}
			return true
		}
		return false
	})
	time.Sleep(1500 * time.Millisecond) // records keep arriving meanwhile
	db.Start()
	t.Logf("database down for %s", time.Since(outageStart).Round(time.Millisecond))
	<-produced
	testkit.Eventually(t, 30*time.Second, "/readyz to recover", func() bool {
		code, _ := call(t, "GET", in.URL()+"/readyz", "", nil)
		return code == 200
	})
	waitCaughtUp(t, env.Broker, 30*time.Second)
	checkExactlyOnce(t, env, messages)
	if retries := metric(t, in, "signal_batch_retries_total"); retries < 1 {
		t.Errorf("signal_batch_retries_total = %v: the outage must have been retried", retries)
	}
	// The client stayed connected and still gets notifications.
	testkit.Produce(t, testkit.Producer(t, env.Broker), testkit.Message("users", []string{"r5"}, paid("after the outage")))
	for {
		f := client.Next(10 * time.Second)
		if strings.Contains(string(f.Data), "after the outage") {
			break
		}
	}
}
