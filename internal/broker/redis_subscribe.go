package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// What a Redis subscription does as watermill-redisstream's subscriber,
// which it replaces, did with outboxd's settings.
const (
	// redisGroupStart is where a new consumer group starts: the stream's
	// first entry, so a group created after the relay published misses
	// nothing.
	redisGroupStart = "0"
	// redisBlock bounds each XREADGROUP, so that the end of the
	// subscription is noticed: go-redis does not interrupt a blocked read
	// when its context ends.
	redisBlock = redisstream.DefaultBlockTime
	// redisConsumerCheckInterval is how often a subscription removes the
	// group's consumers that have been idle for redisConsumerTimeout and
	// own no pending entry: each subscriber is a consumer of its own, so
	// every restart leaves one behind.
	redisConsumerCheckInterval = redisstream.DefaultCheckConsumersInterval
	redisConsumerTimeout       = redisstream.DefaultConsumerTimeout
)

// redisRetryPause is how long a subscription waits after Redis failed a
// read before it tries again.
const redisRetryPause = 500 * time.Millisecond

// redisAnswerTimeout bounds an XACK, and giving back what a subscription
// held when it ends, once the subscription's context may be over.
const redisAnswerTimeout = 2 * time.Second

// redisSubscriber is one consumer of a group, reading its streams with a
// goroutine per Subscribe that owns its output channel: watermill-redisstream's
// subscriber waits for each message's answer before it reads the next.
// Entries are watermill-redisstream's (redisMarshaller), handed on in
// stream order, up to inFlight of them unanswered at once, each acked
// (XACK) on its own; the group, its start and the claiming of what a
// departed consumer left pending are as watermill-redisstream does them.
type redisSubscriber struct {
	client   *redis.Client
	group    string
	consumer string
	// maxIdle is how long an entry stays pending before another consumer
	// may claim it, and claimInterval how often a subscription looks for
	// such entries.
	maxIdle       time.Duration
	claimInterval time.Duration
	inFlight      int
	logger        watermill.LoggerAdapter

	subscriptions
}

// Subscribe creates the group on topic's stream if it is missing and
// reads the stream as the subscriber's consumer until ctx ends or Close.
func (s *redisSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.subscribe(ctx, func() (handOnFunc, error) {
		if err := s.createGroup(ctx, topic); err != nil {
			return nil, err
		}
		sub := &redisSubscription{
			s:      s,
			stream: topic,
			fields: watermill.LogFields{"topic": topic, "redis_consumer": s.consumer},
			owned:  make(map[string]bool),
		}
		return func(ctx context.Context, out chan<- *message.Message) { s.run(ctx, sub, out) }, nil
	})
}

// SubscribeInitialize creates the group on topic's stream if it is
// missing.
func (s *redisSubscriber) SubscribeInitialize(topic string) error {
	return s.whileOpen(func() error { return s.createGroup(context.Background(), topic) })
}

// createGroup creates the group on topic's stream, and the stream if need
// be (XGROUP CREATE ... MKSTREAM), unless the group exists.
func (s *redisSubscriber) createGroup(ctx context.Context, topic string) error {
	err := s.client.XGroupCreateMkStream(ctx, topic, s.group, redisGroupStart).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on stream %s: %w", s.group, topic, err)
	}
	return nil
}

// run hands on sub's entries until ctx ends or Close, then gives back to
// the group what it holds.
func (s *redisSubscriber) run(ctx context.Context, sub *redisSubscription, out chan<- *message.Message) {
	// Every answer is sent, and what is left given back, before the
	// channel closes and Close closes the client.
	slots := newAnswerSlots(s.inFlight)
	defer func() {
		slots.wait()
		sub.giveBack()
	}()
	sub.checkAt = time.Now().Add(redisConsumerCheckInterval)
	for {
		if !slots.take(ctx) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		// One entry for the slot taken and one for each slot free now,
		// which can be taken without waiting.
		entries := sub.next(ctx, 1+slots.free())
		if len(entries) == 0 {
			slots.release()
			continue
		}
		for i, e := range entries {
			if i > 0 {
				slots.takeFree()
			}
			msg, msgCancel, ok := sub.handOn(ctx, e, out)
			if !ok {
				slots.release()
				continue
			}
			slots.answer(func() { sub.answer(ctx, e.ID, msg, msgCancel) })
		}
	}
}

// handOn unmarshals e and hands it on; ok is false when it was answered
// already (dropped as unreadable) or is to be given back as the
// subscription ends. cancel ends the message's context.
func (sub *redisSubscription) handOn(ctx context.Context, e redis.XMessage, out chan<- *message.Message) (msg *message.Message, cancel context.CancelFunc, ok bool) {
	msg, err := redisMarshaller.Unmarshal(e.Values)
	if err != nil {
		// No member of the group can read it: left pending, it would be
		// claimed and fail again for ever. XACK leaves it in the stream,
		// where XRANGE still shows it.
		sub.s.logger.Error("Cannot unmarshal message, acking it unread", err, sub.fields.Add(watermill.LogFields{"redis_id": e.ID}))
		sub.ack(e.ID, nil)
		return nil, nil, false
	}
	msgCtx, cancel := context.WithCancel(ctx)
	msg.SetContext(msgCtx)
	if ctx.Err() == nil {
		select {
		case out <- msg:
			return msg, cancel, true
		case <-ctx.Done():
		}
	}
	cancel()
	sub.putBack(e.ID)
	return nil, nil, false
}

// answer answers Redis as the consumer answers msg, then ends its context:
// a nacked message is handed on again, and one left unanswered when the
// subscription ends is given back to the group.
func (sub *redisSubscription) answer(ctx context.Context, id string, msg *message.Message, cancel context.CancelFunc) {
	defer cancel()
	select {
	case <-msg.Acked():
		sub.ack(id, msg)
	case <-msg.Nacked():
		sub.putBack(id)
	case <-ctx.Done():
		select {
		case <-msg.Acked():
			sub.ack(id, msg)
		default:
			sub.putBack(id)
		}
	}
}

// ack acks entry id (XACK) and lets go of it; msg is nil for an entry
// that was never handed on. An ack that fails leaves the entry pending,
// to be claimed and delivered again.
func (sub *redisSubscription) ack(id string, msg *message.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), redisAnswerTimeout)
	defer cancel()
	if err := sub.s.client.XAck(ctx, sub.stream, sub.s.group, id).Err(); err != nil {
		fields := sub.fields.Add(watermill.LogFields{"redis_id": id})
		if msg != nil {
			fields = fields.Add(watermill.LogFields{"message_uuid": msg.UUID})
		}
		sub.s.logger.Error("Cannot send ack", err, fields)
	}
	sub.disown(id)
}

// Close ends every subscription, giving back the messages in hand, and
// closes the client once the answers are sent. It may be called more than
// once.
func (s *redisSubscriber) Close() error {
	if !s.closeAll() {
		return nil
	}
	if err := s.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("close client: %w", err)
	}
	return nil
}
