package signup

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/outboxd/outboxd/internal/problem"
)

var (
	errBadIdempotencyKey = errors.New("the Idempotency-Key header must appear once and hold 1 to 255 visible ASCII characters")
	errMalformedID       = errors.New("the user id must be a UUID")
)

// problemFor maps an error of the use case to the problem the API answers
// with. Anything it does not know is a 500 whose detail reveals nothing.
func problemFor(err error) problem.Problem {
	var (
		tooLarge   *http.MaxBytesError
		decodeErr  *DecodeError
		invalidErr *ValidationError
	)
	switch {
	case errors.As(err, &tooLarge):
		return problem.New(http.StatusRequestEntityTooLarge, "the body must be at most 64 KiB")
	case errors.As(err, &decodeErr):
		return problem.New(http.StatusBadRequest, decodeErr.Error())
	case errors.As(err, &invalidErr):
		return problem.Problem{
			Type:   problem.TypeValidation,
			Title:  "Invalid fields",
			Status: http.StatusUnprocessableEntity,
			Detail: "one or more fields are invalid; see errors",
			Errors: invalidErr.Fields,
		}
	case errors.Is(err, errBadIdempotencyKey), errors.Is(err, errMalformedID):
		return problem.New(http.StatusBadRequest, err.Error())
	case errors.Is(err, errIdempotencyKeyReused):
		return problem.Problem{
			Type:   problem.TypeIdempotencyReused,
			Title:  "Idempotency-Key reused",
			Status: http.StatusUnprocessableEntity,
			Detail: "this Idempotency-Key was first used with a different request",
		}
	case errors.Is(err, ErrEmailTaken):
		return problem.Problem{
			Type:   problem.TypeEmailTaken,
			Title:  "Email already registered",
			Status: http.StatusConflict,
			Detail: "a user with this email already exists",
		}
	case errors.Is(err, ErrNotFound):
		return problem.New(http.StatusNotFound, "no user has this id")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return problem.New(http.StatusServiceUnavailable, "the request took too long; retry later")
	case databaseUnavailable(err):
		return problem.New(http.StatusServiceUnavailable, "the database is unavailable; retry later")
	}
	return problem.New(http.StatusInternalServerError, "the request could not be completed")
}

// fail answers r with the problem for err, logging it when it is the
// server's fault. The request id comes with the logger's context handler.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	if p.Status == http.StatusInternalServerError && r.Context().Err() != nil {
		// A timed-out request fails with whatever error the driver saw
		// first, not always one wrapping the context's.
		p = problemFor(r.Context().Err())
	}
	if p.Status == http.StatusServiceUnavailable {
		// Every 503 says when to come back (RFC 9110 §10.2.3).
		w.Header().Set("Retry-After", retryAfterUnavailable)
	}
	if p.Status >= http.StatusInternalServerError {
		level := slog.LevelError
		if r.Context().Err() != nil {
			// The client left or the request timed out: not a server fault.
			level = slog.LevelWarn
		}
		h.logger.Log(r.Context(), level, "signup request failed", "status", p.Status, "error", err)
	}
	problem.Write(w, r, p)
}
