package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"
)

// ErrRunning is returned by Run when the Relay is already running.
var ErrRunning = errors.New("relay: already running")

// Relay publishes committed outbox rows through a Watermill publisher. Create
// it with New and start it with Run; it is safe for concurrent use.
type Relay struct {
	pool    *pgxpool.Pool
	pub     message.Publisher
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	tracer  trace.Tracer

	// wake carries a pending "rows may have committed" signal to the pump.
	wake chan struct{}

	running atomic.Bool
	leader  atomic.Bool
	// progress is the time (Unix ns) the leader last published a message,
	// found nothing to publish, or took the lead; Ready measures stalls
	// from it.
	progress atomic.Int64

	// capture is the mode the leader runs, resolved by Run.
	capture atomic.Value // Capture
	// wal is the WAL stream's position, while the leader streams.
	wal walPosition
}

// New returns a Relay that claims rows from the outbox table of pool and
// publishes them through pub, which it never closes. The pool serves the
// claims and the bookkeeping; the leader lock and LISTEN use connections of
// their own, opened with the pool's connection settings. New registers the
// metrics with cfg.Registerer, if any, and fails when cfg is invalid.
func New(pool *pgxpool.Pool, pub message.Publisher, cfg Config) (*Relay, error) {
	if pool == nil {
		return nil, errors.New("relay: nil pool")
	}
	if pub == nil {
		return nil, errors.New("relay: nil publisher")
	}
	cfg = cfg.WithDefaults()
	if cfg.Slot == "" {
		cfg.Slot = SlotName(pool.Config().ConnConfig.Database)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Relay{
		pool:   pool,
		pub:    pub,
		cfg:    cfg,
		log:    cfg.Logger.With("component", "relay", "replica", cfg.Name),
		tracer: cfg.TracerProvider.Tracer(tracerName),
		wake:   make(chan struct{}, 1),
	}
	m, err := newMetrics(cfg.Registerer, r.confirmedAge)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	return r, nil
}

// Run relays until ctx ends, then returns nil. It campaigns for the leader
// lock; while it holds it, it publishes, and while another replica does, it
// stands by and takes over when that one dies or loses its connection.
// Database and broker errors are logged and retried with backoff, never
// returned. On cancellation the batch in hand stops (Run returns once the
// publisher gives back the message in hand): what was published is
// recorded, the rest stays in the outbox to be published again, so no row is
// ever marked without being published. A second concurrent Run returns
// ErrRunning.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	capture, err := r.startCapture(ctx)
	if err != nil || capture == "" {
		return err
	}
	r.capture.Store(capture)
	for _, mode := range []Capture{CapturePoll, CaptureWAL} {
		on := 0.0
		if mode == capture {
			on = 1
		}
		r.metrics.capture.WithLabelValues(string(mode)).Set(on)
	}

	var wg sync.WaitGroup
	wg.Go(func() { r.collectStats(ctx) })
	r.campaign(ctx)
	cancel()
	wg.Wait()
	return nil
}

// startCapture resolves the capture mode, retrying while the database does
// not answer. It returns the error of a mode the server cannot run, and ""
// when ctx ends first.
func (r *Relay) startCapture(ctx context.Context) (Capture, error) {
	for attempt := 1; ; attempt++ {
		capture, err := r.resolveCapture(ctx)
		if err == nil || errors.Is(err, ErrWALUnavailable) {
			return capture, err
		}
		if ctx.Err() != nil {
			return "", nil
		}
		delay := backoff(attempt, r.cfg.RetryBackoffMin, r.cfg.RetryBackoffMax)
		r.log.Warn("relay: cannot check the capture mode, retrying", "error", err, "retry_in", delay)
		if !sleep(ctx, delay) {
			return "", nil
		}
	}
}

// Capture returns the capture mode the relay runs once Run has resolved
// it, and "" before.
func (r *Relay) Capture() Capture {
	c, _ := r.capture.Load().(Capture)
	return c
}

// confirmedAge is outboxd_relay_slot_confirmed_age_seconds.
func (r *Relay) confirmedAge() float64 {
	if r.Capture() != CaptureWAL || !r.leader.Load() || r.wal.outstanding.Load() == 0 {
		return 0
	}
	return time.Since(time.Unix(0, r.wal.movedAt.Load())).Seconds()
}

// IsLeader reports whether this replica currently holds the leader lock and
// publishes.
func (r *Relay) IsLeader() bool { return r.leader.Load() }

// signal wakes the pump without blocking: one pending signal is enough.
func (r *Relay) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// connect opens a connection of its own, outside the pool, with the pool's
// settings. Its application_name tells operators what it is for.
func (r *Relay) connect(ctx context.Context, purpose string) (*pgx.Conn, error) {
	cfg := r.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "outboxd relay " + purpose
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect for %s: %w", purpose, err)
	}
	return conn, nil
}
