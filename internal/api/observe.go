package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/trace"
)

// routeUnmatched labels requests that matched no route, so that scanners
// probing random paths cannot blow up the metrics' cardinality.
const routeUnmatched = "unmatched"

// quietRoutes are polled by orchestrators and scrapers: their access logs
// go to debug so that they do not drown the requests that matter.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// observe writes one access log line and updates the HTTP metrics per
// request. It logs the method, the route pattern (not the raw path, which
// may carry ids), status, bytes, duration and request id: never a body, a
// query string or a header.
func observe(logger *slog.Logger, m *metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rw := wrapResponseWriter(w)
			next.ServeHTTP(rw, r)
			elapsed := time.Since(start)

			route := chi.RouteContext(r.Context()).RoutePattern()
			if route == "" || rw.status == http.StatusNotFound && route == "/*" {
				route = routeUnmatched
			}
			trace.SpanFromContext(r.Context()).SetName(r.Method + " " + route)
			m.requests.WithLabelValues(route, r.Method, strconv.Itoa(rw.status)).Inc()
			m.duration.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())

			level := slog.LevelInfo
			if quietRoutes[route] {
				level = slog.LevelDebug
			}
			logger.LogAttrs(r.Context(), level, "http request",
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", rw.status),
				slog.Int64("bytes", rw.bytes),
				slog.Duration("duration", elapsed),
			)
		})
	}
}

// requestIDHandler adds the request id in the context, if any, to every
// record, so that all lines of one request can be found together.
type requestIDHandler struct {
	slog.Handler
}

// Handle adds request_id to r and passes it on.
func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := middleware.GetReqID(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around the derived handler.
func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around the derived handler.
func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
