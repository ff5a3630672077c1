package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/outboxd/outboxd/internal/problem"
	"github.com/outboxd/outboxd/internal/profile"
)

// retryAfterProfileUnavailable is the Retry-After, in seconds, of a 503 of
// the profile route.
const retryAfterProfileUnavailable = "2"

// ProfileSource fetches a user's profile from the profile service.
// *profilerpc.Client is one; the errors of package profile it returns
// (profile.ErrNotFound, ErrTimeout, ErrUnavailable, ErrServiceFailed) choose
// the answer. The API depends on this interface only, so it links no broker
// driver.
type ProfileSource interface {
	Profile(ctx context.Context, userID uuid.UUID) (profile.Profile, error)
}

// profileHandler serves GET /v1/users/{id}/profile by asking the profile
// service over the broker.
type profileHandler struct {
	profiles ProfileSource // nil: the deployment has no request–reply
	logger   *slog.Logger
}

// get answers 200 with the profile, 404 when the user has none (yet), 400
// for an id that is not a UUID, 504 when the service did not reply in
// time, 503 when the broker cannot be reached, 502 when the service failed
// and 501 when the broker in use has no request–reply.
func (h profileHandler) get(w http.ResponseWriter, r *http.Request) {
	if h.profiles == nil {
		problem.Write(w, r, problem.New(http.StatusNotImplemented,
			"profiles are read from the profile service over the broker, and this deployment's broker has no request–reply"))
		return
	}
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		problem.Write(w, r, problem.New(http.StatusBadRequest, "the user id must be a UUID"))
		return
	}
	p, err := h.profiles.Profile(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	body, err := json.Marshal(p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
}

// fail answers with the problem for err and logs the server-side ones.
func (h profileHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p problem.Problem
	switch {
	case errors.Is(err, profile.ErrNotFound):
		p = problem.New(http.StatusNotFound, "no profile for this user id: no such user, or the profile is not created yet")
	case errors.Is(err, profile.ErrTimeout):
		p = problem.New(http.StatusGatewayTimeout, "the profile service did not answer in time; retry later")
	case errors.Is(err, profile.ErrUnavailable):
		p = problem.New(http.StatusServiceUnavailable, "the profile service cannot be reached; retry later")
	case errors.Is(err, profile.ErrServiceFailed):
		p = problem.New(http.StatusBadGateway, "the profile service failed to answer; retry later")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		p = problem.New(http.StatusServiceUnavailable, "the request took too long; retry later")
	default:
		p = problem.New(http.StatusInternalServerError, "the request could not be completed")
	}
	if p.Status == http.StatusServiceUnavailable {
		// Every 503 says when to come back (RFC 9110 §10.2.3); the client
		// reconnects to the broker within seconds.
		w.Header().Set("Retry-After", retryAfterProfileUnavailable)
	}
	if p.Status >= http.StatusInternalServerError {
		level := slog.LevelWarn
		if p.Status == http.StatusInternalServerError {
			level = slog.LevelError
		}
		h.logger.Log(r.Context(), level, "profile request failed", "status", p.Status, "error", err)
	}
	problem.Write(w, r, p)
}
