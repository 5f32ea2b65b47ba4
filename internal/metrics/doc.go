// Package metrics declares Signal's Prometheus metrics in one place, so the
// names are consistent and documented together. Components receive a
// *Metrics; tests give each its own registry.
package metrics
