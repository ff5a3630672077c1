// Package api is outboxd's HTTP server: the signup API of package signup
// behind the middleware a public endpoint needs (request ids, access logs,
// metrics, panic recovery, timeouts, body and rate limits) and the
// operational endpoints /healthz, /readyz and /metrics. Its OpenAPI 3.1
// document (OpenAPI) is served at /openapi.json.
//
// The rate limit keys each client by its address. X-Forwarded-For is only
// believed on a connection from Config.TrustedProxies, and then only as far
// as the right-most address that is not a trusted proxy: what lies further
// left was written by the client.
//
// GET /v1/users/{id}/profile is the one route that talks to the broker: it
// asks the worker's profile service through Config.Profiles (a
// profilerpc.Client) and answers 504 when no reply comes in time. The
// package itself depends only on the ProfileSource interface and package
// profile's type and errors, so it links no broker driver (a test checks).
//
// Usage:
//
//	srv, err := api.New(pool, api.Config{Addr: ":8080", Logger: logger})
//	...
//	err = srv.ListenAndServe(ctx) // returns nil once ctx ends and in-flight requests finish
package api
