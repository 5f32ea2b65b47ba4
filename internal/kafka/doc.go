// Package kafka is Signal's franz-go adapter: the consumer-group loop that
// hands batches to a Handler and commits only after they are handled, the
// client options (SASL, TLS) shared with the producer of `signalctl
// produce`, and the embedded Kafka-protocol broker (kfake) for development
// and tests.
//
// It knows nothing of notifications; the Handler does.
package kafka
