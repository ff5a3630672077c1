package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/admin"
	"github.com/outboxd/outboxd/internal/problem"
	"github.com/outboxd/outboxd/internal/signup"
	"github.com/outboxd/outboxd/outbox"
)

// Route patterns of the API, as they appear in logs and metric labels.
const (
	routeSignup = "/v1/signup"
	routeUser   = "/v1/users/{id}"
	// routeUserProfile is answered by the profile service over the broker.
	routeUserProfile = "/v1/users/{id}/profile"
)

// newRouter assembles the API's routes and middleware.
func newRouter(pool *pgxpool.Pool, cfg Config, logger *slog.Logger) (http.Handler, error) {
	var notifier *outbox.Notifier
	if cfg.Wake == WakeCoalesced {
		notifier = outbox.NewNotifier(pool, 0, func(err error) {
			logger.Warn("api: wake relays", "error", err)
		})
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	users, err := signup.NewHandler(pool, signup.Config{
		Argon2:   cfg.Argon2,
		Logger:   logger,
		Created:  m.signups,
		Outbox:   outbox.Writer{WithoutNotify: cfg.Wake != WakeInTransaction},
		Notifier: notifierOrNil(notifier),
	})
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}

	r := chi.NewRouter()
	// Outermost first. The body limit wraps the server's own ResponseWriter,
	// so that an oversized body also closes the connection; the observer
	// sits outside the recoverer, so a panic is logged and counted as the
	// 500 it becomes.
	r.Use(
		limitBody(signup.MaxBodyBytes),
		requestID,
		observe(logger, m),
		recoverPanics(logger),
		timeout(cfg.RequestTimeout),
	)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, problem.New(http.StatusNotFound, "no such resource"))
	})
	r.MethodNotAllowed(methodNotAllowed)

	ops := admin.Handler(cfg.Registry, pool.Ping)
	r.Method(http.MethodGet, "/healthz", ops)
	r.Method(http.MethodGet, "/readyz", ops)
	r.Method(http.MethodGet, "/metrics", ops)
	r.Get(routeOpenAPI, serveOpenAPI)

	signups := r.With()
	if limit := *cfg.SignupRateLimit; limit > 0 {
		trusted, err := parseTrustedProxies(cfg.TrustedProxies)
		if err != nil {
			return nil, fmt.Errorf("api: TrustedProxies: %w", err)
		}
		clientKey := func(r *http.Request) string { return clientAddress(r, trusted) }
		signups = r.With(newClientLimiter(limit, maxTrackedClients, time.Now).middleware(clientKey))
	}
	signups.Post(routeSignup, users.Signup)
	r.Get(routeUser, users.GetUser)
	r.Get(routeUserProfile, profileHandler{profiles: cfg.Profiles, logger: logger}.get)
	return r, nil
}

// methodNotAllowed answers 405 with the Allow header chi's default would set.
func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.Routes != nil {
		for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if rctx.Routes.Match(chi.NewRouteContext(), method, r.URL.Path) {
				allowed = append(allowed, method)
			}
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
	}
	problem.Write(w, r, problem.New(http.StatusMethodNotAllowed, "this resource does not accept "+r.Method))
}

// notifierOrNil keeps a nil *outbox.Notifier from becoming a non-nil
// interface.
func notifierOrNil(n *outbox.Notifier) interface{ Notify() } {
	if n == nil {
		return nil
	}
	return n
}
