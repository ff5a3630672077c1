package profilerpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/profile"
	"github.com/outboxd/outboxd/internal/tracing"
)

// Connecting: the first retry comes after connectRetryInitial, each next
// one after twice as long, up to connectRetryMax; one attempt may take
// connectTimeout.
const (
	connectRetryInitial = 500 * time.Millisecond
	connectRetryMax     = 30 * time.Second
	connectTimeout      = 10 * time.Second
)

// ErrAlreadyRan is returned by a second call to Client.Run.
var ErrAlreadyRan = errors.New("profilerpc: Run was already called")

// errClientDoesNotReply is what the client's backend answers if asked for a
// reply topic: only Servers publish replies.
var errClientDoesNotReply = errors.New("profile client: clients do not publish replies")

// Client sends profile.get requests and waits for their replies. Create it
// with NewClient, connect it with Run, and call Profile from any goroutine.
// It is meant to live as long as the process: each Client has its own reply
// topic on the broker.
type Client struct {
	bcfg       broker.Config
	cfg        ClientConfig
	logger     *slog.Logger
	replyTopic string
	metrics    *clientMetrics
	mux        *replyMux
	tracer     trace.Tracer

	mu       sync.Mutex
	ran      bool
	conn     *clientConn // nil while not connected
	inFlight sync.WaitGroup
}

// clientConn is a connected Client's side of the component.
type clientConn struct {
	transport *transport
	bus       *cqrs.CommandBus
	backend   *requestreply.PubSubBackend[ProfileReply]
	// replies is the subscription to the reply topic; stopReplies ends it.
	replies     <-chan *message.Message
	stopReplies context.CancelFunc
}

// NewClient returns a Client for the broker bcfg names. It does not connect:
// Run does, so that a process can start while the broker is away.
func NewClient(bcfg broker.Config, cfg ClientConfig) (*Client, error) {
	bcfg = bcfg.WithDefaults()
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("profile client config: %w", err)
	}
	if err := checkSupported(bcfg.Kind); err != nil {
		return nil, fmt.Errorf("profile client: %w", err)
	}
	m, err := newClientMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	topic, err := newReplyTopic()
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger.With("component", "profilerpc.client")
	return &Client{
		bcfg:       bcfg,
		cfg:        cfg,
		logger:     logger,
		replyTopic: topic,
		metrics:    m,
		mux:        newReplyMux(logger, m.late),
		tracer:     tracing.Tracer("profilerpc"),
	}, nil
}

// newReplyTopic is a reply topic no other Client has: 128 random bits.
func newReplyTopic() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("profile client: reply topic id: %w", err)
	}
	return ReplyTopicPrefix + hex.EncodeToString(b), nil
}

// ReplyTopic returns the topic this Client receives its replies on.
func (c *Client) ReplyTopic() string { return c.replyTopic }

// Run connects to the broker, retrying with backoff until it answers, and
// serves replies until ctx ends. Then it refuses new requests, lets those
// in flight finish (each within Timeout), disconnects and returns nil. A
// lost reply subscription is logged and connected again. Profile fails with
// profile.ErrUnavailable while Run is not connected.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.ran {
		c.mu.Unlock()
		return ErrAlreadyRan
	}
	c.ran = true
	c.mu.Unlock()
	defer c.mux.closeAll()

	for {
		conn, err := c.connect(ctx)
		if err != nil {
			return nil // ctx ended
		}
		if !c.serve(ctx, conn) {
			c.logger.InfoContext(context.WithoutCancel(ctx), "profile client stopped")
			return nil
		}
		c.logger.ErrorContext(ctx, "profile client lost its reply subscription; connecting again", "reply_topic", c.replyTopic)
	}
}

// connect dials until it succeeds or ctx ends.
func (c *Client) connect(ctx context.Context) (*clientConn, error) {
	wait := connectRetryInitial
	for attempt := 1; ; attempt++ {
		conn, err := c.dial(ctx)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.logger.WarnContext(ctx, "cannot reach the broker for profile requests; retrying",
			"error", err, "attempt", attempt, "retry_in", wait)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
		wait = min(2*wait, connectRetryMax)
	}
}

// dial connects once and subscribes to the reply topic.
func (c *Client) dial(ctx context.Context) (*clientConn, error) {
	dialCtx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	t, err := newTransport(dialCtx, c.bcfg, roleClient, 1)
	if err != nil {
		return nil, err
	}
	// The subscription outlives ctx: requests in flight when ctx ends still
	// get their replies.
	subCtx, stopReplies := context.WithCancel(context.WithoutCancel(ctx))
	replies, err := t.subscribe(subCtx, c.replyTopic)
	if err != nil {
		stopReplies()
		_ = t.Close()
		return nil, fmt.Errorf("subscribe to reply topic %s: %w", c.replyTopic, err)
	}
	conn := &clientConn{transport: t, replies: replies, stopReplies: stopReplies}
	if err := c.wire(conn); err != nil {
		stopReplies()
		_ = t.Close()
		return nil, err
	}
	return conn, nil
}

// wire builds Watermill's command bus and request–reply backend over conn.
func (c *Client) wire(conn *clientConn) error {
	logger := watermill.NewSlogLoggerWithLevelMapping(c.logger,
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	bus, err := cqrs.NewCommandBusWithConfig(conn.transport.pub, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(cqrs.CommandBusGeneratePublishTopicParams) (string, error) {
			return c.cfg.RequestTopic, nil
		},
		OnSend:    c.onSend,
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return fmt.Errorf("profile client: command bus: %w", err)
	}
	backend, err := requestreply.NewPubSubBackend[ProfileReply](requestreply.PubSubBackendConfig{
		// Required by the backend; used only by a Server's.
		Publisher: conn.transport.pub,
		SubscriberConstructor: func(requestreply.PubSubBackendSubscribeParams) (message.Subscriber, error) {
			return c.mux, nil
		},
		GenerateSubscribeTopic: func(p requestreply.PubSubBackendSubscribeParams) (string, error) {
			return string(p.OperationID), nil
		},
		GeneratePublishTopic: func(requestreply.PubSubBackendPublishParams) (string, error) {
			return "", errClientDoesNotReply
		},
		Logger: logger,
	}, requestreply.BackendPubsubJSONMarshaler[ProfileReply]{})
	if err != nil {
		return fmt.Errorf("profile client: request–reply backend: %w", err)
	}
	conn.bus, conn.backend = bus, backend
	return nil
}

// onSend adds to each request where to reply, how long its sender waits,
// and the correlation id and trace context of the HTTP request behind it.
func (c *Client) onSend(p cqrs.CommandBusOnSendParams) error {
	msg := p.Message
	ctx := msg.Context()
	msg.Metadata.Set(MetadataReplyTo, c.replyTopic)
	if deadline, ok := ctx.Deadline(); ok {
		msg.Metadata.Set(MetadataTimeoutMS, strconv.FormatInt(max(time.Until(deadline).Milliseconds(), 1), 10))
	}
	if id := middleware.GetReqID(ctx); id != "" {
		msg.Metadata.Set(MetadataCorrelationID, id)
	}
	tracing.Inject(ctx, msg.Metadata)
	return nil
}

// serve hands replies to their requests until ctx ends (lost = false) or
// the reply subscription closes by itself (lost = true), then waits for the
// requests in flight and disconnects.
func (c *Client) serve(ctx context.Context, conn *clientConn) (lost bool) {
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		for msg := range conn.replies {
			c.mux.dispatch(msg)
		}
	}()
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	c.logger.InfoContext(ctx, "profile client ready", "request_topic", c.cfg.RequestTopic, "reply_topic", c.replyTopic)

	select {
	case <-ctx.Done():
	case <-dispatched:
		lost = true
	}
	c.mu.Lock()
	c.conn = nil
	c.mu.Unlock()
	// No request starts any more; those in flight end within Timeout.
	c.inFlight.Wait()
	conn.stopReplies()
	if err := conn.transport.Close(); err != nil {
		c.logger.WarnContext(context.WithoutCancel(ctx), "profile client: disconnect", "error", err)
	}
	<-dispatched
	return lost
}

// Ready reports whether the Client can send requests: nil once Run has
// connected, an error before and after.
func (c *Client) Ready(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return fmt.Errorf("%w: not connected to the broker", profile.ErrUnavailable)
	}
	return nil
}

// acquire returns the connection for one request and counts the request in
// flight (release with inFlight.Done), or nil when not connected.
func (c *Client) acquire() *clientConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.inFlight.Add(1)
	}
	return c.conn
}

// Profile asks the profile service for the profile of user id and waits
// for the reply, at most Timeout (or until ctx ends, if sooner). It returns
// profile.ErrNotFound when the user has no profile, profile.ErrTimeout when
// no reply came in time, profile.ErrUnavailable when the Client is not
// connected or cannot send, profile.ErrServiceFailed when the service
// answered with an error, and ctx's error when ctx ended first.
func (c *Client) Profile(ctx context.Context, id uuid.UUID) (p profile.Profile, err error) {
	start := time.Now()
	ctx, span := c.tracer.Start(ctx, "send "+c.cfg.RequestTopic,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", c.cfg.RequestTopic),
		))
	defer func() {
		c.metrics.observe(err, time.Since(start))
		if err != nil && !errors.Is(err, profile.ErrNotFound) {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()

	conn := c.acquire()
	if conn == nil {
		return profile.Profile{}, fmt.Errorf("%w: not connected to the broker", profile.ErrUnavailable)
	}
	defer c.inFlight.Done()
	return c.request(ctx, conn, id)
}

func (c *Client) request(ctx context.Context, conn *clientConn, id uuid.UUID) (profile.Profile, error) {
	waitCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	replies, stop, err := requestreply.SendWithReplies[ProfileReply](waitCtx, conn.bus, conn.backend, &GetProfile{UserID: id})
	if err != nil {
		return profile.Profile{}, c.waitError(ctx, waitCtx, fmt.Errorf("%w: send request: %w", profile.ErrUnavailable, err))
	}
	defer func() {
		// The component's listener may still send one more reply (the
		// timeout it noticed) after ours: read until it closes the channel,
		// or its goroutine would block for good.
		stop()
		for range replies {
		}
	}()
	select {
	case reply := <-replies:
		return c.result(ctx, waitCtx, id, reply)
	case <-waitCtx.Done():
		return profile.Profile{}, c.waitError(ctx, waitCtx, nil)
	}
}

// result turns the component's reply into a profile or an error.
func (c *Client) result(ctx, waitCtx context.Context, id uuid.UUID, reply requestreply.Reply[ProfileReply]) (profile.Profile, error) {
	var (
		timeout   requestreply.ReplyTimeoutError
		unmarshal requestreply.ReplyUnmarshalError
	)
	switch {
	case errors.As(reply.Error, &timeout):
		// The listener stopped: our deadline, ctx, or the Client stopping.
		return profile.Profile{}, c.waitError(ctx, waitCtx, fmt.Errorf("%w: the client is stopping", profile.ErrUnavailable))
	case errors.As(reply.Error, &unmarshal):
		return profile.Profile{}, fmt.Errorf("%w: malformed reply: %w", profile.ErrServiceFailed, reply.Error)
	case reply.Error != nil:
		return profile.Profile{}, fmt.Errorf("%w: %w", profile.ErrServiceFailed, reply.Error)
	}
	r := reply.HandlerResult
	switch {
	case !r.Found:
		return profile.Profile{}, profile.ErrNotFound
	case r.Profile == nil || r.Profile.UserID != id:
		return profile.Profile{}, fmt.Errorf("%w: reply for user %s holds no profile of that user", profile.ErrServiceFailed, id)
	}
	return *r.Profile, nil
}

// waitError is the error of a request that stopped waiting: ctx's own
// error when the caller gave up, profile.ErrTimeout when Timeout passed,
// otherwise fallback.
func (c *Client) waitError(ctx, waitCtx context.Context, fallback error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("profile request: %w", ctx.Err())
	case waitCtx.Err() != nil:
		return fmt.Errorf("%w (waited %s)", profile.ErrTimeout, c.cfg.Timeout)
	}
	return fallback
}
