// Package tsgen writes the TypeScript types of the JavaScript client
// (clients/js/src/gen) from api/openapi.yaml and api/asyncapi.yaml: one type
// per component schema (and, for AsyncAPI, per message payload), with the
// schema's description as its comment. It covers the JSON Schema the specs
// use — $ref, type (lists too), const, enum, properties with required,
// additionalProperties, items, allOf (if/then members skipped), oneOf and
// anyOf — and says so with an error for anything else it cannot express.
//
// The files are checked in; TestGeneratedTypesAreCurrent fails when a spec
// changed and they were not regenerated (`make types`, or
// `go test ./internal/tsgen -update`).
package tsgen
