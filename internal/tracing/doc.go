// Package tracing continues the W3C traces of producers into Signal: spans
// are exported over OTLP/HTTP to otel.endpoint, and only for work whose
// input carried a sampled traceparent (a Kafka record's header, a REST
// request's). Signal starts no trace of its own, so the producer decides
// what is sampled and an untraced record costs a header lookup.
//
// A traced record becomes, under the producer's span:
//
//	signal.consume   the record from its batch being handed over to its offset commit
//	└ signal.persist one per attempt to store its batch
//	  └ signal.push  its rows staged in a write transaction, until that commits
//
// and a traced REST request one server span named by its route. Log lines
// written with such a context carry trace_id and span_id (LogHandler).
package tracing
