// Package api is outboxd's HTTP server: the signup API of package signup
// behind the middleware a public endpoint needs (request ids, access logs,
// metrics, panic recovery, timeouts, body and rate limits) and the
// operational endpoints /healthz, /readyz and /metrics.
//
// Usage:
//
//	srv, err := api.New(pool, api.Config{Addr: ":8080", Logger: logger})
//	...
//	err = srv.ListenAndServe(ctx) // returns nil once ctx ends and in-flight requests finish
package api
