package nestjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/outboxd/outboxd/outbox"
)

// outgoing is one event on its way to NestJS consumers.
type outgoing struct {
	pattern   string
	data      json.RawMessage
	key       string // the outbox message key; Kafka partitions by it
	messageID string
}

// packet is the event as NATS, RabbitMQ and Redis carry it.
func (o outgoing) packet() []byte {
	b, _ := json.Marshal(eventPacket{Pattern: o.pattern, Data: o.data})
	return b
}

// sender delivers events on one transport.
type sender interface {
	// send returns once the transport has the event: confirmed by
	// RabbitMQ, acknowledged by Kafka, received by the NATS or Redis
	// server (which hands it to the consumers listening at that moment).
	send(ctx context.Context, o outgoing) error
	close() error
}

// Emitter delivers outboxd's events to NestJS consumers in their
// transport's wire format: the worker's nestjs handler calls Emit for each
// message of Topics. Create it with NewEmitter, connect it with
// AddHandlers (it is a worker.Service, so the worker connects it before
// its router runs and closes it after), then Emit.
type Emitter struct {
	cfg      Config
	patterns map[string]string
	logger   *slog.Logger

	mu     sync.Mutex
	sender sender
}

// NewEmitter returns an Emitter for the routes cfg.Events names. It does
// not connect: AddHandlers does.
func NewEmitter(cfg Config) (*Emitter, error) {
	cfg = cfg.WithDefaults()
	err := errors.Join(cfg.validate(), cfg.validateEvents())
	if cfg.Transport == TransportRMQ && cfg.Queue == "" {
		err = errors.Join(err, errors.New("Config.Queue: the NestJS consumers' RabbitMQ queue is required"))
	}
	if err != nil {
		return nil, fmt.Errorf("nestjs emitter config: %w", err)
	}
	if cfg.Transport == TransportKafka {
		if err := checkKafkaNames(cfg.Events, cfg.KafkaTopicsInUse); err != nil {
			return nil, err
		}
	}
	patterns := make(map[string]string, len(cfg.Events))
	for _, r := range cfg.Events {
		patterns[r.Topic] = r.Pattern
	}
	return &Emitter{
		cfg:      cfg,
		patterns: patterns,
		logger:   cfg.Logger.With("component", "nestjs.emitter", "transport", string(cfg.Transport)),
	}, nil
}

// Topics lists the topics the Emitter delivers, in Config.Events order.
func (e *Emitter) Topics() []string {
	topics := make([]string, 0, len(e.cfg.Events))
	for _, r := range e.cfg.Events {
		topics = append(topics, r.Topic)
	}
	return topics
}

// AddHandlers connects to the transport; on Kafka it first refuses
// patterns that collide with the cluster's topics. It adds no handler to
// r: the worker's nestjs handler calls Emit. It may be called once.
func (e *Emitter) AddHandlers(ctx context.Context, _ *message.Router) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sender != nil {
		return errors.New("nestjs emitter: already connected")
	}
	var (
		s   sender
		err error
	)
	switch e.cfg.Transport {
	case TransportNATS:
		s, err = newNATSSender(ctx, e.cfg)
	case TransportRMQ:
		s, err = newRMQSender(ctx, e.cfg, e.logger)
	case TransportRedis:
		s, err = newRedisSender(ctx, e.cfg, e.logger)
	case TransportKafka:
		s, err = newKafkaSender(e.cfg)
	}
	if err != nil {
		return fmt.Errorf("nestjs emitter over %s: %w", e.cfg.Transport, err)
	}
	e.sender = s
	e.logger.InfoContext(ctx, "delivering events to NestJS consumers", "events", fmt.Sprint(e.cfg.Events), "queue", e.cfg.Queue)
	return nil
}

// Emit delivers msg, a message of topic, as the NestJS event its route
// names, with msg's payload as data, and returns once the transport has it
// (see the package documentation for what that means per transport).
func (e *Emitter) Emit(ctx context.Context, topic string, msg *message.Message) error {
	pattern, ok := e.patterns[topic]
	if !ok {
		return fmt.Errorf("nestjs emitter: topic %s has no route", topic)
	}
	e.mu.Lock()
	s := e.sender
	e.mu.Unlock()
	if s == nil {
		return errors.New("nestjs emitter: not connected")
	}
	return s.send(ctx, outgoing{
		pattern:   pattern,
		data:      json.RawMessage(msg.Payload),
		key:       msg.Metadata.Get(outbox.MetadataKey),
		messageID: msg.UUID,
	})
}

// Close disconnects. It may be called more than once.
func (e *Emitter) Close() error {
	e.mu.Lock()
	s := e.sender
	e.sender = nil
	e.mu.Unlock()
	if s == nil {
		return nil
	}
	if err := s.close(); err != nil {
		return fmt.Errorf("nestjs emitter: close: %w", err)
	}
	return nil
}
