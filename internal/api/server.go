package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/outboxd/outboxd/internal/tracing"
)

// Server timeouts. A request has ReadTimeout to arrive, then RequestTimeout
// to be handled; the write deadline (counted from the end of the headers)
// leaves room for both.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	idleTimeout       = 2 * time.Minute
	// writeSlack is the time left after a timed-out handler to write its 503.
	writeSlack = 5 * time.Second
)

// Server is the outboxd HTTP API.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	handler http.Handler
}

// New returns the API over pool. It registers its metrics on cfg.Registry,
// so one registry serves one Server.
func New(pool *pgxpool.Pool, cfg Config) (*Server, error) {
	if pool == nil {
		return nil, errors.New("api: pool is nil")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("api config: %w", err)
	}
	logger := slog.New(requestIDHandler{cfg.Logger.Handler()}).With("component", "api")
	router, err := newRouter(pool, cfg, logger)
	if err != nil {
		return nil, err
	}
	// The server span continues an incoming traceparent; the signup stores
	// its context in the outbox row, so relay and handlers join the trace.
	handler := otelhttp.NewHandler(router, "http.server",
		otelhttp.WithPropagators(tracing.Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
	return &Server{cfg: cfg, logger: logger, handler: handler}, nil
}

// Handler returns the API with all its middleware, for an http.Server of
// the caller's or for httptest.
func (s *Server) Handler() http.Handler { return s.handler }

// ListenAndServe listens on Config.Addr and serves until ctx ends; see Serve.
// A port already in use fails at once.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("api listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the API on ln until ctx ends, then stops accepting
// connections and waits for in-flight requests to finish. It returns nil
// after such a graceful shutdown, and an error if serving fails or in-flight
// requests outlast RequestTimeout plus a few seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      readTimeout + s.cfg.RequestTimeout + writeSlack,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		// Requests must outlive ctx: shutdown waits for them to finish
		// instead of cancelling them.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.logger.InfoContext(ctx, "api listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api serve: %w", err)
	case <-ctx.Done():
	}
	s.logger.InfoContext(ctx, "api shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout+writeSlack)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		<-errc
		return fmt.Errorf("api shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api serve: %w", err)
	}
	s.logger.InfoContext(ctx, "api stopped")
	return nil
}
