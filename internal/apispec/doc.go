// Package apispec checks the code and its traffic against the contracts in
// api/ (openapi.yaml, asyncapi.yaml), for tests: a REST response against the
// OpenAPI document (pb33f/libopenapi-validator), a value against one of the
// AsyncAPI schemas (santhosh-tekuri/jsonschema, draft-07 as AsyncAPI
// Schema), and what the documents declare: their routes, frames and codes.
package apispec
