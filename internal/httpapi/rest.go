package httpapi

import "net/http"

// routes registers the REST API.
func (a *api) routes(handle func(string, http.HandlerFunc)) {}
