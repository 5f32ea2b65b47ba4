// Package test checks the Helm chart in deploy/helm/signal offline: helm
// lint, helm template with the default and with full values, every
// rendered manifest decoded strictly into its Kubernetes API type, what
// the manifests say (the drain fits the grace period, GOMEMLIMIT under the
// memory limit, probes, ports, selectors), and the defaults table of
// docs/operations.md#run-on-kubernetes against the rendered defaults.
//
// A module of its own, so k8s.io/api stays out of the product's go.mod.
// `make chart-check` installs helm (pinned) and runs it.
package test
