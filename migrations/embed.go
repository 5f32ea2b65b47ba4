// Package migrations holds Signal's SQL schema as numbered golang-migrate
// files, embedded in the binary so `signalctl migrate` needs nothing on disk.
package migrations

import "embed"

// FS holds every NNNN_name.up.sql / .down.sql file of this folder.
//
//go:embed *.sql
var FS embed.FS
