// Package api holds Signal's machine-readable contracts: openapi.yaml
// (OpenAPI 3.1, the REST API) and asyncapi.yaml (AsyncAPI 3, the Kafka
// message and the WebSocket frames). They are embedded so tests anywhere in
// the module check the code against the same files other teams read.
package api

import _ "embed"

// OpenAPI is api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// AsyncAPI is api/asyncapi.yaml.
//
//go:embed asyncapi.yaml
var AsyncAPI []byte
