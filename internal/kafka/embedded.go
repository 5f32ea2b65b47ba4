package kafka

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EmbeddedPartitions is the partition count of the embedded broker's topic.
const EmbeddedPartitions = 4

// Embedded is an in-process Kafka-protocol broker (franz-go's kfake). It
// keeps records in memory only: it is for development and tests.
type Embedded struct {
	cluster *kfake.Cluster
	Addr    string
}

// StartEmbedded listens on 127.0.0.1:port (0: any free port) with topic
// created.
func StartEmbedded(port int, topics ...string) (*Embedded, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(EmbeddedPartitions),
		// Let development and tests use short session timeouts, so a
		// killed consumer's partitions move on quickly.
		kfake.GroupMinSessionTimeout(500 * time.Millisecond)}
	if port != 0 {
		// kfake listens on 127.0.0.1 itself; check first for a clear message.
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("embedded Kafka broker: port %d is taken (another signalctl serve --dev?): %w", port, err)
		}
		l.Close()
		opts = append(opts, kfake.Ports(port))
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(EmbeddedPartitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded Kafka broker: %w", err)
	}
	return &Embedded{cluster: c, Addr: c.ListenAddrs()[0]}, nil
}

// Close stops the broker.
func (e *Embedded) Close() { e.cluster.Close() }
