package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A broker restarted with a data folder comes back on its address with
// the records and the group's committed offsets; without one it comes
// back empty. The soak's broker-restart fault relies on the first.
func TestAnEmbeddedBrokerRestartKeepsWhatItsFolderHolds(t *testing.T) {
	for _, tt := range []struct {
		name      string
		dir       bool
		wantCount int
		wantAt    int64
	}{
		{"with a data folder", true, 10, 10},
		{"in memory", false, 0, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := EmbeddedOptions{Topics: []string{"t"}}
			if tt.dir {
				o.DataDir = t.TempDir()
			}
			emb, err := StartEmbeddedWith(o)
			if err != nil {
				t.Fatal(err)
			}
			defer emb.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addr), kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "r%d", i)}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			adm := kadm.NewClient(cl)
			var offs kadm.Offsets
			offs.Add(kadm.Offset{Topic: "t", Partition: 0, At: 10, LeaderEpoch: -1})
			if _, err := adm.CommitOffsets(ctx, "g", offs); err != nil {
				t.Fatal(err)
			}
			cl.Close()
			addr := emb.Addr
			if err := emb.Restart(100 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			cl, err = kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			adm = kadm.NewClient(cl)
			ends, err := adm.ListEndOffsets(ctx, "t")
			if err != nil {
				t.Fatal(err)
			}
			count := 0
			ends.Each(func(l kadm.ListedOffset) { count += int(l.Offset) })
			if count != tt.wantCount {
				t.Fatalf("after the restart the topic holds %d records, want %d", count, tt.wantCount)
			}
			// A broker that forgot the group answers GROUP_ID_NOT_FOUND.
			at := int64(-1)
			if fetched, err := adm.FetchOffsets(ctx, "g"); err == nil {
				if o, ok := fetched.Lookup("t", 0); ok && o.Err == nil {
					at = o.At
				}
			}
			if at != tt.wantAt {
				t.Fatalf("after the restart the group's offset is %d, want %d", at, tt.wantAt)
			}
		})
	}
}
