package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/mail"
)

// SubscriberFactory returns a subscriber in the durable consumer group named
// group, such as broker.NewSubscriber with its config bound.
type SubscriberFactory func(ctx context.Context, group string) (message.Subscriber, error)

// ErrAlreadyRan is returned by a second call to Run.
var ErrAlreadyRan = errors.New("worker: Run was already called")

// Worker consumes user.created with one handler per effect. Create it with
// New and start it with Run.
type Worker struct {
	pool      *pgxpool.Pool
	subscribe SubscriberFactory
	mailer    mail.Mailer
	// sending holds a slot per welcome mail being sent: the email handler
	// holds more messages than Concurrency (Config.Held) for its batched
	// lookups and records, but sends at most Concurrency at once.
	sending  chan struct{}
	cfg      Config
	logger   *slog.Logger
	metrics  *handlerMetrics
	batchers map[string]*batcher // the database handlers' batches
	// mailLookups looks up in batches whether the welcome mails were sent;
	// mailRecords records sent ones in the inbox in batches.
	mailLookups, mailRecords *batcher

	mu     sync.Mutex
	ran    bool
	router *message.Router
}

// New returns a worker that handles user.created with the handlers cfg
// selects, each on a subscriber from subscribe. mailer may be nil when the
// email handler is not selected.
func New(pool *pgxpool.Pool, subscribe SubscriberFactory, mailer mail.Mailer, cfg Config) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	switch {
	case pool == nil:
		return nil, errors.New("worker: pool is nil")
	case subscribe == nil:
		return nil, errors.New("worker: subscriber factory is nil")
	case mailer == nil && cfg.runs(HandlerEmail):
		return nil, errNoMailer
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Worker{
		pool:      pool,
		subscribe: subscribe,
		mailer:    mailer,
		sending:   make(chan struct{}, cfg.Concurrency),
		cfg:       cfg,
		logger:    cfg.Logger.With("component", "worker"),
		metrics:   m,
		batchers:  batchers(pool, cfg, m),
		// Lookups and records only, one batch at a time each: no attempt is
		// counted in flight (enter), so a batch is written as soon as the
		// one before it is done, and grows while it is being written, as
		// a group commit does; a record never waits for mails still being
		// sent.
		mailLookups: newLookups(HandlerEmail, pool, cfg),
		mailRecords: newRecords(HandlerEmail, pool, cfg, m),
	}, nil
}

// batchers returns a batcher per handler that writes in batches.
func batchers(pool *pgxpool.Pool, cfg Config, m *handlerMetrics) map[string]*batcher {
	return map[string]*batcher{
		HandlerProfile: newBatcher(HandlerProfile, pool, createProfiles, cfg, m),
		HandlerAudit:   newBatcher(HandlerAudit, pool, appendAudits, cfg, m),
	}
}

// Run consumes until ctx ends, then stops taking messages, ends the
// attempts in flight (their messages are nacked and redelivered later, never
// dead-lettered), closes the subscribers and returns nil. It returns an
// error if a subscriber cannot be created or subscribed, or if every
// handler stops on its own (the broker connection closed).
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.ran {
		w.mu.Unlock()
		return ErrAlreadyRan
	}
	w.ran = true
	w.mu.Unlock()

	router, err := message.NewRouter(message.RouterConfig{}, watermill.NewSlogLoggerWithLevelMapping(
		w.logger.With("component", "worker.router"),
		// The router's info lines describe its own plumbing.
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug},
	))
	if err != nil {
		return fmt.Errorf("worker router: %w", err)
	}
	effects := w.effects()
	var (
		subs     []message.Subscriber
		services []Service
	)
	closeSubs := func() {
		for _, s := range subs {
			_ = s.Close()
		}
		for _, svc := range services {
			if err := svc.Close(); err != nil {
				w.logger.Warn("worker: close service", "error", err)
			}
		}
	}
	for _, name := range w.cfg.Handlers {
		sub, err := w.subscribe(ctx, Group(name))
		if err != nil {
			closeSubs()
			return fmt.Errorf("worker: subscriber for %s (group %s): %w", name, Group(name), err)
		}
		subs = append(subs, sub)
		sub = keyOrdered{Subscriber: sub, limit: w.cfg.Held(name)}
		for _, r := range w.routes(name, effects) {
			h := router.AddConsumerHandler(r.name, r.topic, sub, r.fn)
			h.AddMiddleware(w.middleware(name)...)
		}
	}
	for _, svc := range w.cfg.Services {
		if err := svc.AddHandlers(ctx, router); err != nil {
			closeSubs()
			return fmt.Errorf("worker: service: %w", err)
		}
		services = append(services, svc)
	}

	w.mu.Lock()
	w.router = router
	w.mu.Unlock()

	batchCtx, stopBatchers := context.WithCancel(context.WithoutCancel(ctx))
	var batchers sync.WaitGroup
	for _, name := range w.cfg.Handlers {
		if b := w.batchers[name]; b != nil {
			batchers.Go(func() { b.run(batchCtx) })
		}
	}
	if w.cfg.runs(HandlerEmail) {
		batchers.Go(func() { w.mailLookups.run(batchCtx) })
		batchers.Go(func() { w.mailRecords.run(batchCtx) })
	}
	// The batchers outlive ctx until the router has ended the attempts in
	// flight, so that a batch being written finishes rather than fails.
	defer batchers.Wait()
	defer stopBatchers()

	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			if err := router.Close(); err != nil {
				w.logger.Error("worker: close router", "error", err)
			}
		case <-stopped:
		}
	}()

	w.logger.InfoContext(ctx, "worker running", "handlers", w.cfg.Handlers, "topic", event.TopicUserCreated)
	if err := router.Run(ctx); err != nil {
		closeSubs()
		return fmt.Errorf("worker: %w", err)
	}
	closeSubs()
	if ctx.Err() == nil {
		return errors.New("worker: every handler stopped (subscriptions closed)")
	}
	w.logger.InfoContext(context.WithoutCancel(ctx), "worker stopped")
	return nil
}

// middleware is the chain around handler's messages, outermost first (see
// the package documentation for why this order).
func (w *Worker) middleware(handler string) []message.HandlerMiddleware {
	return []message.HandlerMiddleware{
		releaseKey,
		correlate(handler, w.logger),
		traceSpan(handler),
		deadLetter(handler, w.pool, w.metrics, w.logger),
		retry(w.cfg),
		countAttempt,
		instrument(handler, w.metrics, w.logger),
		recoverPanic(w.logger),
		middleware.Timeout(w.cfg.HandlerTimeout),
	}
}

// Ready reports why the worker cannot take messages, or nil: the router
// must be running with every handler subscribed, and PostgreSQL must answer.
// It fits admin.ReadyFunc.
func (w *Worker) Ready(ctx context.Context) error {
	w.mu.Lock()
	router := w.router
	w.mu.Unlock()
	switch {
	case router == nil || !router.IsRunning():
		return errors.New("worker is not running yet")
	case router.IsClosed():
		return errors.New("worker is stopping")
	}
	if err := w.pool.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}
