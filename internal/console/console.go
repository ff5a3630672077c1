package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// Console is the operator's console of one database.
type Console struct {
	cfg     Config
	pool    *pgxpool.Pool
	store   store
	snaps   *snapshots
	backlog *history // the pending total of each snapshot
	metrics *history // the samples of the /metrics
	sampler *sampler
	pages   *pages
	logger  *slog.Logger
}

// New returns the console of the database pool reaches, which should log
// in as (a member of) the console's role. It validates cfg.
func New(pool *pgxpool.Pool, cfg Config) (*Console, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		cfg:     cfg,
		pool:    pool,
		store:   store{pool: pool},
		snaps:   &snapshots{db: pool},
		backlog: &history{window: cfg.Window},
		metrics: &history{window: cfg.Window},
		pages:   pages,
		logger:  cfg.Logger,
	}
	c.sampler = newSampler(cfg, c.metrics)
	return c, nil
}

// Run keeps the overview's figures and the charts' samples fresh until ctx
// ends. The handler serves without it, but from figures read on demand
// once and never again.
func (c *Console) Run(ctx context.Context) error {
	var g errgroup.Group
	g.Go(func() error {
		c.snaps.run(ctx, c.cfg.RefreshInterval, func(s Snapshot) {
			if s.Err == "" {
				c.backlog.add(s.At, map[string]float64{"pending": float64(s.Pending)})
			} else if ctx.Err() == nil {
				c.logger.WarnContext(ctx, "console: cannot read the overview's figures", "error", s.Err)
			}
		})
		return nil
	})
	g.Go(func() error {
		c.sampler.run(ctx, c.cfg.SampleInterval)
		return nil
	})
	_ = g.Wait()
	return ctx.Err()
}

// Serve runs the console (Run) and serves it on ln until ctx ends, then
// shuts down gracefully.
func (c *Console) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           c.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(c.logger.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var g errgroup.Group
	g.Go(func() error { return c.Run(ctx) })
	g.Go(func() error {
		<-ctx.Done()
		shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer stop()
		return srv.Shutdown(shutdownCtx)
	})
	err := srv.Serve(ln)
	cancel()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if werr := g.Wait(); err == nil && werr != nil && !errors.Is(werr, context.Canceled) {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}

// URL is where the console answers on ln, prefix included.
func (c *Console) URL(ln net.Listener) string {
	return "http://" + ln.Addr().String() + c.cfg.PathPrefix + "/"
}
