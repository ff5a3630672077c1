package profilerpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/outboxd/outboxd/internal/broker"
)

// transport is what one side of request–reply needs of the broker: a
// publisher and a subscriber, each on its own connection so that closing
// the subscriber (which drains its connection on NATS) never stops replies
// still being sent.
type transport struct {
	pub message.Publisher
	sub message.Subscriber
	// flush, when set, returns once the broker has registered every
	// subscription made so far. Core NATS sends SUB asynchronously on the
	// subscriber's connection, so without it a reply published from another
	// connection right after Subscribe may find no subscriber and vanish.
	flush func(context.Context) error
}

// flushTimeout bounds the wait for the broker to confirm a subscription.
const flushTimeout = 10 * time.Second

// subscribe subscribes to topic and returns once the broker routes the
// topic's messages to the subscription.
func (t *transport) subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	msgs, err := t.sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	if t.flush != nil {
		// ctx is the subscription's lifetime, often without a deadline.
		flushCtx, cancel := context.WithTimeout(ctx, flushTimeout)
		defer cancel()
		if err := t.flush(flushCtx); err != nil {
			return nil, fmt.Errorf("wait for the broker to register the subscription: %w", err)
		}
	}
	return msgs, nil
}

// registeredSubscriber is the transport's subscriber whose Subscribe
// returns once the broker routes the topic's messages to it
// (transport.subscribe), so that a service the router reports running
// answers the very first request: core NATS drops a request that reaches
// the server before the subscription does.
type registeredSubscriber struct{ t *transport }

func (s registeredSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.t.subscribe(ctx, topic)
}

func (s registeredSubscriber) Close() error { return s.t.sub.Close() }

// Close closes the subscriber, then the publisher.
func (t *transport) Close() error {
	return errors.Join(t.sub.Close(), t.pub.Close())
}

// role says which side a transport is for.
type role int

const (
	// roleClient publishes requests and subscribes to its own reply topic
	// alone.
	roleClient role = iota
	// roleServer subscribes to requests in QueueGroup, concurrency at a
	// time, and publishes replies.
	roleServer
)

func (r role) String() string {
	if r == roleServer {
		return "profile service"
	}
	return "profile client"
}

// newTransport connects to the broker bcfg names for one side.
func newTransport(ctx context.Context, bcfg broker.Config, r role, concurrency int) (*transport, error) {
	bcfg = bcfg.WithDefaults()
	logger := watermill.NewSlogLoggerWithLevelMapping(
		bcfg.Logger.With("component", "profilerpc.transport", "broker", string(bcfg.Kind), "role", r.String()),
		// The transports' info lines describe their own plumbing.
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug},
	)
	var (
		t   *transport
		err error
	)
	switch bcfg.Kind {
	case broker.KindNATS:
		t, err = newNATSTransport(ctx, bcfg, r, concurrency, logger)
	case broker.KindAMQP:
		t, err = newAMQPTransport(bcfg, r, concurrency, logger)
	default:
		return nil, checkSupported(bcfg.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%s over %s: %w", r, bcfg.Kind, err)
	}
	return t, nil
}

// requestTopicPattern is package broker's rule for topics: dot-separated
// words that every broker carries as they are.
var requestTopicPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)

// replyTopicPattern is the only form of topic the Server publishes to: the
// prefix and a Client's random id (newReplyTopic).
var replyTopicPattern = regexp.MustCompile(`^profile\.reply\.[0-9a-f]{32}$`)

// replyTopicOf returns the reply topic a request names, or an error when it
// names none or one that is not a Client's.
func replyTopicOf(msg *message.Message) (string, error) {
	topic := msg.Metadata.Get(MetadataReplyTo)
	if !replyTopicPattern.MatchString(topic) {
		return "", fmt.Errorf("request %s: %s %q is not a profile reply topic (%s<32 hex digits>)",
			msg.UUID, MetadataReplyTo, topic, ReplyTopicPrefix)
	}
	return topic, nil
}
