package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/outboxd/outboxd/relay"
)

// errPublisherClosed is every publish's error once Close has begun.
var errPublisherClosed = errors.New("publisher closed")

// transport is one broker's client, publishing runs whose topics passed
// checkTopic and the publisher's prepare.
type transport interface {
	// publishRun sends every message of run at once and returns one error
	// per message, in order of run, once each one's fate is known or ctx
	// has ended.
	publishRun(ctx context.Context, run []relay.Outgoing) []error
	// close closes the client; no publishRun runs meanwhile or after.
	close() error
}

// allOrNothing is a transport that can store a run in one transaction:
// Publish gives it a whole call, which its contract allows since nothing
// after a failure is stored.
type allOrNothing interface {
	publishAll(ctx context.Context, run []relay.Outgoing) error
}

// publisher puts what all transports share around one: topic checks, error
// context, Publish's one-at-a-time order on top of the pipelined runs, and
// a Close that waits for the publishes in flight and frees what the
// constructor opened for the transport.
type publisher struct {
	kind      Kind
	transport transport
	// prepare readies the broker for topic before its first publish (a
	// JetStream stream) or refuses it; nil when there is nothing to do.
	prepare func(topic string) error
	// release frees what the transport does not own, after it closed.
	release func()

	// mu is held for reading by every publish and for writing by Close, so
	// that Close waits for them and none starts after it.
	mu       sync.RWMutex
	closed   bool
	closeErr error
}

var _ relay.BatchPublisher = (*publisher)(nil)

// Publish implements message.Publisher. The messages go one at a time, each
// once the one before is stored, so that none is stored after a failure; on
// postgres they go in one transaction instead.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return p.wrap(topic, errPublisherClosed)
	}
	if err := p.check(topic); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	run := make([]relay.Outgoing, len(msgs))
	for i, msg := range msgs {
		run[i] = relay.Outgoing{Topic: topic, Message: msg}
	}
	if t, ok := p.transport.(allOrNothing); ok {
		if err := t.publishAll(msgs[0].Context(), run); err != nil {
			return p.wrap(topic, err)
		}
		return nil
	}
	for i, msg := range msgs {
		if err := p.transport.publishRun(msg.Context(), run[i:i+1])[0]; err != nil {
			return p.wrap(topic, fmt.Errorf("message %s: %w", msg.UUID, err))
		}
	}
	return nil
}

// PublishBatch implements relay.BatchPublisher: the whole run is in flight
// at once, and a message whose topic is invalid fails alone.
func (p *publisher) PublishBatch(ctx context.Context, run []relay.Outgoing) []error {
	errs := make([]error, len(run))
	p.mu.RLock()
	defer p.mu.RUnlock()
	valid := make([]relay.Outgoing, 0, len(run))
	at := make([]int, 0, len(run))
	for i, o := range run {
		if p.closed {
			errs[i] = p.wrap(o.Topic, errPublisherClosed)
			continue
		}
		if err := p.check(o.Topic); err != nil {
			errs[i] = err
			continue
		}
		valid = append(valid, o)
		at = append(at, i)
	}
	if len(valid) == 0 {
		return errs
	}
	for j, err := range p.transport.publishRun(ctx, valid) {
		if err != nil {
			errs[at[j]] = p.wrap(valid[j].Topic, err)
		}
	}
	return errs
}

// check refuses a topic no broker can carry, and readies the broker for a
// valid one.
func (p *publisher) check(topic string) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	if p.prepare != nil {
		if err := p.prepare(topic); err != nil {
			return fmt.Errorf("%s: prepare topic %s: %w", p.kind, topic, err)
		}
	}
	return nil
}

func (p *publisher) wrap(topic string, err error) error {
	return fmt.Errorf("%s: publish to %s: %w", p.kind, topic, err)
}

// Close implements message.Publisher: it waits for the publishes in flight
// and fails those that come after. It may be called more than once.
func (p *publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.closeErr
	}
	p.closed = true
	if err := p.transport.close(); err != nil {
		p.closeErr = fmt.Errorf("%s: close publisher: %w", p.kind, err)
	}
	if p.release != nil {
		p.release()
	}
	return p.closeErr
}

// clientHooks wrap a transport's client, for tests that make one message of
// a run fail where the broker cannot be made to; the zero value wraps
// nothing.
type clientHooks struct {
	kafkaProducer kafkaProducerHook
	postgresTx    postgresTxHook
}
