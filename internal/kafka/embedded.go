package kafka

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EmbeddedPartitions is the partition count of the embedded broker's topic.
const EmbeddedPartitions = 4

// Embedded is an in-process Kafka-protocol broker (franz-go's kfake). It
// keeps records in memory, or in a folder (EmbeddedOptions.DataDir) so that
// a restart keeps them: it is for development and tests.
type Embedded struct {
	Addr string

	mu      sync.Mutex
	cluster *kfake.Cluster
	o       EmbeddedOptions
}

// EmbeddedOptions configure StartEmbeddedWith.
type EmbeddedOptions struct {
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// DataDir, when set, keeps the log and the groups' committed offsets
	// on disk: Restart then comes back with everything, as a real broker
	// does after a restart.
	DataDir string
	// Topics are created with EmbeddedPartitions partitions.
	Topics []string
}

// StartEmbedded listens on 127.0.0.1:port (0: any free port) with topic
// created, keeping records in memory.
func StartEmbedded(port int, topics ...string) (*Embedded, error) {
	return StartEmbeddedWith(EmbeddedOptions{Port: port, Topics: topics})
}

// StartEmbeddedWith starts a broker configured by o.
func StartEmbeddedWith(o EmbeddedOptions) (*Embedded, error) {
	if o.Port != 0 {
		// kfake listens on 127.0.0.1 itself; check first for a clear message.
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)))
		if err != nil {
			return nil, fmt.Errorf("embedded Kafka broker: port %d is taken (another signalctl serve --dev?): %w", o.Port, err)
		}
		l.Close()
	}
	c, err := newCluster(o)
	if err != nil {
		return nil, err
	}
	addr := c.ListenAddrs()[0]
	if o.Port == 0 { // a restart comes back on the same address
		_, p, _ := net.SplitHostPort(addr)
		o.Port, _ = strconv.Atoi(p)
	}
	return &Embedded{cluster: c, Addr: addr, o: o}, nil
}

func newCluster(o EmbeddedOptions) (*kfake.Cluster, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(EmbeddedPartitions),
		// Let development and tests use short session timeouts, so a
		// killed consumer's partitions move on quickly.
		kfake.GroupMinSessionTimeout(500 * time.Millisecond)}
	if o.Port != 0 {
		opts = append(opts, kfake.Ports(o.Port))
	}
	if len(o.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(EmbeddedPartitions, o.Topics...))
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded Kafka broker: %w", err)
	}
	return c, nil
}

// Restart stops the broker, waits down, and starts it again on the same
// address: clients see the connection drop and reconnect. Without a
// DataDir the records and offsets are gone, as on a new broker.
func (e *Embedded) Restart(down time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cluster.Close()
	time.Sleep(down)
	var err error
	// The port may stay busy for a moment after Close.
	for range 50 {
		var c *kfake.Cluster
		if c, err = newCluster(e.o); err == nil {
			e.cluster = c
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("restart embedded Kafka broker: %w", err)
}

// Close stops the broker.
func (e *Embedded) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cluster.Close()
}
