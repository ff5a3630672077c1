package api

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"

	"github.com/outboxd/outboxd/internal/problem"
)

// RequestIDHeader carries a request's id, in requests and responses.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an incoming request id we accept.
const maxRequestIDLen = 128

// limitBody caps every request body at n bytes. Reading past it fails with
// *http.MaxBytesError, which handlers answer 413.
func limitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}

// requestID gives every request an id: the client's X-Request-Id when it is
// sane, a new UUIDv7 otherwise. The id is echoed in the response, stored in
// the context under chi's middleware.RequestIDKey (read it with
// middleware.GetReqID) and added to every log line of the request.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), middleware.RequestIDKey, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// saneRequestID accepts ids that are safe to log and to copy into event
// metadata: short, and made of letters, digits and a few separators.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '/', c == '+', c == '=':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// timeout gives each request a deadline. Handlers pass the context to every
// call, so a request past its deadline fails fast and answers 503 itself;
// nothing writes behind a handler's back.
func timeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// recoverPanics turns a handler's panic into a logged error and a 500
// problem, so one bad request cannot take the process down.
func recoverPanics(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := wrapResponseWriter(w)
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value, never wrapped
					panic(v) // net/http's way to abort a response silently
				}
				logger.ErrorContext(r.Context(), "panic serving request", "panic", v, "stack", string(debug.Stack()))
				if !rw.wroteHeader {
					problem.Write(rw, r, problem.New(http.StatusInternalServerError, "the request could not be completed"))
				}
			}()
			next.ServeHTTP(rw, r)
		})
	}
}
