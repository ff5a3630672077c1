package nestjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
)

// QueueGroup is the NATS queue group the Services share requests in, as
// the profile service's own requests are shared (profilerpc.QueueGroup):
// each request goes to one worker.
const QueueGroup = "outboxd-profile"

// ErrRequestsUnsupported is returned by NewService for Kafka: a NestJS
// Kafka client needs a reply topic per pattern and partition assignments,
// which the Service does not provide.
var ErrRequestsUnsupported = errors.New("NestJS requests are answered on nats, amqp and redis, not kafka")

// ServesRequests reports whether a Service answers requests on t.
func ServesRequests(t Transport) bool { return t != TransportKafka }

// Service is the worker's profile service for NestJS clients: it answers
// ClientProxy.send({ cmd: 'get_user_by_id' }, { userId }) with the user's
// profile as GET /v1/users/{id}/profile returns it, or with an error
// {status: 'error', message, code} a client reads from the observable's
// error: "user not found" (code not_found), a profile not made yet
// (profile_pending, retry shortly), a malformed request (bad_request,
// naming the problem) or a failed lookup (unavailable, retry later).
//
// It is a worker.Service: AddHandlers connects and starts answering, Close
// stops. It answers on its own connection, beside the worker's router.
type Service struct {
	cfg       Config
	responder responder
	logger    *slog.Logger

	mu       sync.Mutex
	started  bool
	listener listener
}

// listener takes requests from one transport and replies to them.
type listener interface {
	// stop stops taking requests, waits for the replies to the ones in
	// hand and disconnects.
	stop() error
}

// NewService returns the profile service for NestJS clients of the
// transport cfg names, reading profiles from pool. It does not connect:
// AddHandlers does.
func NewService(pool *pgxpool.Pool, cfg Config) (*Service, error) {
	if pool == nil {
		return nil, errors.New("nestjs service: pool is nil")
	}
	cfg = cfg.WithDefaults()
	err := cfg.validate()
	switch {
	case !ServesRequests(cfg.Transport):
		err = errors.Join(err, ErrRequestsUnsupported)
	case cfg.Transport == TransportRMQ && cfg.RequestQueue == "":
		err = errors.Join(err, errors.New("Config.RequestQueue: the queue NestJS clients send requests to is required on RabbitMQ"))
	case cfg.Transport == TransportRMQ && cfg.RequestQueue == cfg.Queue:
		err = errors.Join(err, fmt.Errorf("Config.RequestQueue: %s is the consumers' event queue (Config.Queue); requests need a queue of their own", cfg.Queue))
	}
	if err != nil {
		return nil, fmt.Errorf("nestjs service config: %w", err)
	}
	logger := cfg.Logger.With("component", "nestjs.service", "transport", string(cfg.Transport))
	return &Service{
		cfg:       cfg,
		responder: responder{pool: pool, cfg: cfg, logger: logger},
		logger:    logger,
	}, nil
}

// AddHandlers connects to the transport and starts answering requests; it
// returns once the transport routes requests to the Service. It adds no
// handler to r. It may be called once.
func (s *Service) AddHandlers(ctx context.Context, _ *message.Router) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("nestjs service: AddHandlers was already called")
	}
	var (
		l   listener
		err error
	)
	switch s.cfg.Transport {
	case TransportNATS:
		l, err = listenNATS(ctx, s.cfg, s.serve)
	case TransportRMQ:
		l, err = listenRMQ(ctx, s.cfg, s.serve, s.logger)
	case TransportRedis:
		l, err = listenRedis(ctx, s.cfg, s.serve, s.logger)
	}
	if err != nil {
		return fmt.Errorf("nestjs service over %s: %w", s.cfg.Transport, err)
	}
	s.started, s.listener = true, l
	s.logger.InfoContext(ctx, "answering NestJS requests", "pattern", PatternGetUserByID, "queue", s.cfg.RequestQueue)
	return nil
}

// serve is what listeners call for each request: the reply to body.
// Requests outlive the context they arrived under (AddHandlers'), so that
// stopping answers the ones in hand; each is bounded by LookupTimeout.
func (s *Service) serve(body []byte) replyPacket {
	return s.responder.answer(context.Background(), body)
}

// Close stops answering: requests in hand are answered first. It may be
// called more than once.
func (s *Service) Close() error {
	s.mu.Lock()
	l := s.listener
	s.listener = nil
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	if err := l.stop(); err != nil {
		return fmt.Errorf("nestjs service: close: %w", err)
	}
	return nil
}

// workers runs request handlers, at most n at once, and waits for them.
type workers struct {
	sem chan struct{}
	wg  sync.WaitGroup
}

func newWorkers(n int) *workers { return &workers{sem: make(chan struct{}, max(n, 1))} }

// do runs fn in a goroutine once fewer than n run.
func (w *workers) do(fn func()) {
	w.sem <- struct{}{}
	w.wg.Go(func() {
		defer func() { <-w.sem }()
		fn()
	})
}

func (w *workers) wait() { w.wg.Wait() }
