package daemon_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/testkit"
)

// A new consumer group with reset_offset latest starts at the end of each
// partition: the records already there are not behind it, so /status
// (signalctl status) shows no lag for them, as the lag gauge does — not
// each partition's whole length (issue 27, item 6).
func TestANewGroupStartingAtTheLatestShowsNoLag(t *testing.T) {
	broker := testkit.Broker(t)
	producer := testkit.Producer(t, broker)
	var values [][]byte
	for range 40 {
		values = append(values, testkit.Message("users", []string{"u1"}, nil))
	}
	testkit.Produce(t, producer, values...) // before the group exists
	cfg := testkit.Config(t, broker, pgtest.NewDatabase(t))
	cfg.Kafka.ResetOffset = "latest"
	in := testkit.Start(t, cfg)

	var st struct {
		Consumer struct {
			TotalLag int64 `json:"totalLag"`
			Lag      []struct {
				Partition int32 `json:"partition"`
				Committed int64 `json:"committed"`
				End       int64 `json:"end"`
				Lag       int64 `json:"lag"`
			} `json:"lag"`
		} `json:"consumer"`
	}
	var ends int64
	testkit.Eventually(t, 30*time.Second, "the status to list the partitions", func() bool {
		req, _ := http.NewRequest("GET", in.URL()+"/status", nil)
		req.Header.Set("Authorization", "Bearer "+testkit.APIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&st) != nil || len(st.Consumer.Lag) == 0 {
			return false
		}
		ends = 0
		for _, p := range st.Consumer.Lag {
			ends += p.End
		}
		return ends == 40
	})
	for _, p := range st.Consumer.Lag {
		if p.Committed < 0 && p.Lag != 0 {
			t.Errorf("partition %d: nothing committed, end %d, lag %d: want 0 (the group starts at the end)", p.Partition, p.End, p.Lag)
		}
	}
	if st.Consumer.TotalLag != 0 {
		t.Errorf("total lag %d for records the group will never read, want 0", st.Consumer.TotalLag)
	}
}
