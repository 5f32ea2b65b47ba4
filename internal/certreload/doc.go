// Package certreload serves a TLS certificate from a pair of PEM files and
// picks up a new pair when the files change, so a rotated certificate
// (cert-manager, a renewed Let's Encrypt pair, a Kubernetes Secret
// remounted) takes effect without a restart. Connections already open keep
// the certificate they were made with; the next handshake gets the new one.
package certreload
