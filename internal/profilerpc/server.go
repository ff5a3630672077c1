package profilerpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/components/requestreply"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/profile"
	"github.com/outboxd/outboxd/internal/tracing"
)

// HandlerName names the Server's handler in the Watermill router.
const HandlerName = "profile.get"

// marshaler encodes requests as JSON named by CommandName.
var marshaler = cqrs.JSONMarshaler{GenerateName: cqrs.NamedStruct(cqrs.FullyQualifiedStructName)}

// errServerDoesNotListen is what the server's backend answers if asked to
// listen for replies: only Clients do.
var errServerDoesNotListen = errors.New("profile service: servers do not listen for replies")

// Server is the profile service: it answers profile.get requests from the
// profiles table. Create it with NewServer and add it to a Watermill router
// with AddHandlers (worker.Config.Services does both).
type Server struct {
	pool   *pgxpool.Pool
	bcfg   broker.Config
	cfg    ServerConfig
	logger *slog.Logger
	tracer trace.Tracer

	mu        sync.Mutex
	added     bool
	transport *transport
}

// NewServer returns the profile service over pool for the broker bcfg
// names. It does not connect: AddHandlers does.
func NewServer(pool *pgxpool.Pool, bcfg broker.Config, cfg ServerConfig) (*Server, error) {
	if pool == nil {
		return nil, errors.New("profile service: pool is nil")
	}
	bcfg = bcfg.WithDefaults()
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("profile service config: %w", err)
	}
	if err := checkSupported(bcfg.Kind); err != nil {
		return nil, fmt.Errorf("profile service: %w", err)
	}
	return &Server{
		pool:   pool,
		bcfg:   bcfg,
		cfg:    cfg,
		logger: cfg.Logger.With("component", "profilerpc.server"),
		tracer: tracing.Tracer("profilerpc"),
	}, nil
}

// AddHandlers connects to the broker and adds the profile.get handler to r,
// subscribed to the request topic in QueueGroup: the services running share
// the requests. Run r to serve; Close after r has stopped. AddHandlers may
// be called once.
func (s *Server) AddHandlers(ctx context.Context, r *message.Router) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.added {
		return errors.New("profile service: AddHandlers was already called")
	}
	t, err := newTransport(ctx, s.bcfg, roleServer, s.cfg.Concurrency)
	if err != nil {
		return err
	}
	if err := s.addHandler(r, t); err != nil {
		_ = t.Close()
		return err
	}
	s.added, s.transport = true, t
	return nil
}

func (s *Server) addHandler(r *message.Router, t *transport) error {
	logger := watermill.NewSlogLoggerWithLevelMapping(s.logger,
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	backend, err := requestreply.NewPubSubBackend[ProfileReply](requestreply.PubSubBackendConfig{
		Publisher: t.pub,
		SubscriberConstructor: func(requestreply.PubSubBackendSubscribeParams) (message.Subscriber, error) {
			return nil, errServerDoesNotListen
		},
		GenerateSubscribeTopic: func(requestreply.PubSubBackendSubscribeParams) (string, error) {
			return "", errServerDoesNotListen
		},
		GeneratePublishTopic: func(p requestreply.PubSubBackendPublishParams) (string, error) {
			return replyTopicOf(p.CommandMessage)
		},
		Logger: logger,
		// A failed lookup is answered with its error and done with: the
		// client decides what to do, a redelivery would answer nobody.
		AckCommandErrors: true,
	}, requestreply.BackendPubsubJSONMarshaler[ProfileReply]{})
	if err != nil {
		return fmt.Errorf("profile service: request–reply backend: %w", err)
	}
	proc, err := cqrs.NewCommandProcessorWithConfig(r, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) {
			return s.cfg.RequestTopic, nil
		},
		SubscriberConstructor: func(cqrs.CommandProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return registeredSubscriber{t}, nil
		},
		OnHandle:  s.onHandle,
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return fmt.Errorf("profile service: command processor: %w", err)
	}
	h, err := proc.AddHandler(requestreply.NewCommandHandlerWithResult[GetProfile, ProfileReply](HandlerName, backend, s.getProfile))
	if err != nil {
		return fmt.Errorf("profile service: add handler: %w", err)
	}
	h.AddMiddleware(s.neverRedeliver)
	return nil
}

// onHandle checks where a request wants its reply and bounds its lookup by
// the time its sender still waits, inside a server span continuing the
// sender's trace.
func (s *Server) onHandle(p cqrs.CommandProcessorOnHandleParams) error {
	msg := p.Message
	log := s.logger.With("message_uuid", msg.UUID)
	if id := msg.Metadata.Get(MetadataCorrelationID); id != "" {
		log = log.With("correlation_id", id)
	}
	if _, err := replyTopicOf(msg); err != nil {
		// Answering would publish wherever the request says.
		log.Warn("profile request dropped: no valid reply topic", "error", err)
		return nil
	}
	timeout := s.cfg.LookupTimeout
	if ms, err := strconv.ParseInt(msg.Metadata.Get(MetadataTimeoutMS), 10, 64); err == nil && ms > 0 {
		timeout = time.Duration(ms) * time.Millisecond
	}
	// msg's context carries the original message the component replies to.
	ctx, cancel := context.WithTimeout(tracing.Extract(msg.Context(), msg.Metadata), timeout)
	defer cancel()
	ctx, span := s.tracer.Start(ctx, "process "+s.cfg.RequestTopic,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", s.cfg.RequestTopic),
			attribute.String("messaging.message.id", msg.UUID),
		))
	defer span.End()
	start := time.Now()
	err := p.Handler.Handle(ctx, p.Command)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	log.Debug("profile request handled", "duration", time.Since(start), "error", err)
	return err
}

// getProfile is the handler: a missing profile is a reply, not an error.
func (s *Server) getProfile(ctx context.Context, req *GetProfile) (ProfileReply, error) {
	p, err := profile.Get(ctx, s.pool, req.UserID)
	switch {
	case errors.Is(err, profile.ErrNotFound):
		return ProfileReply{Found: false}, nil
	case err != nil:
		// The reply carries the error to the client; log it here, where it
		// can be fixed.
		s.logger.WarnContext(ctx, "profile lookup failed; answering with the error", "error", err)
		return ProfileReply{}, err
	}
	return ProfileReply{Found: true, Profile: &p}, nil
}

// neverRedeliver acks a request whatever happens to it: a reply that could
// not be sent or a request that does not decode would fail the same way
// again, and the client stops waiting within seconds anyway. The failure
// is logged at warning level.
func (s *Server) neverRedeliver(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err != nil {
			s.logger.Warn("profile request not answered", "message_uuid", msg.UUID, "error", err)
		}
		return out, nil
	}
}

// Close disconnects from the broker. Call it after the router has stopped,
// so that replies in progress are sent. It may be called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	t := s.transport
	s.transport = nil
	s.mu.Unlock()
	if t == nil {
		return nil
	}
	if err := t.Close(); err != nil {
		return fmt.Errorf("profile service: close: %w", err)
	}
	return nil
}
