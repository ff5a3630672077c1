package broker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
)

// universalFeatures are what each transport, as this package sets it up,
// guarantees in the terms of Watermill's universal suite. None delivers
// exactly once (a message acked just before Close may come again), and
// every one keeps messages across instances. Reconnects are tested by
// TestNATSOutageIsNotPermanent, not here: the suite would need to restart
// the shared brokers (RestartServiceCommand stays nil).
func universalFeatures(kind broker.Kind) tests.Features {
	f := tests.Features{
		ConsumerGroups: true,
		Persistent:     true,
		// The stress-sized variants (5,000 messages, 50 subscribers, 100
		// nacks per subscriber) would take minutes on two shared cores.
		ForceShort: true,
		// A new subscriber joins the suite's one group and resumes after
		// what the group acked, rather than reading the topic again.
		NewSubscriberReceivesOldMessages: false,
	}
	switch kind {
	case broker.KindNATS, broker.KindAMQP, broker.KindRedis:
		// One member of a group gets messages in publish order; with
		// several, each takes what the broker hands it next (doc.go,
		// Order).
		f.GuaranteedOrder = true
		f.GuaranteedOrderWithSingleSubscriber = true
	case broker.KindPostgres:
		// A group reads under a row lock, one member at a time.
		f.GuaranteedOrder = true
	case broker.KindKafka:
		// The suite's messages have no key, so sarama spreads them over
		// the partitions and only each partition keeps its order; a key's
		// order is TestConformance's EveryGroupGetsEveryMessageIntactInKeyOrder.
		f.GuaranteedOrder = false
	}
	return f
}

// TestUniversal runs Watermill's universal pub/sub suite
// (watermill/pubsub/tests) against the publisher and subscribers of
// NewPublisher and NewSubscriber, on every transport: one broker per
// transport, a topic per test, and a group per test where the suite asks
// for none. NATS, RabbitMQ, Redis and PostgreSQL run twice: handing on one
// message at a time (the default) and Config.InFlight at once, as the
// worker's subscriptions do, where a message nacked comes back after later
// ones (no guaranteed order).
func TestUniversal(t *testing.T) {
	t.Parallel()
	type variant struct {
		name     string
		tr       transport
		inFlight int
	}
	var variants []variant
	for _, tr := range transports() {
		variants = append(variants, variant{string(tr.kind), tr, 0})
		if tr.kind == broker.KindNATS || tr.kind == broker.KindAMQP || tr.kind == broker.KindRedis || tr.kind == broker.KindPostgres {
			variants = append(variants, variant{string(tr.kind) + "-in-flight-16", tr, 16})
		}
	}
	for _, v := range variants {
		tr := v.tr
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			cfg := tr.config(t)
			cfg.InFlight = v.inFlight
			features := universalFeatures(tr.kind)
			if v.inFlight > 1 {
				features.GuaranteedOrder, features.GuaranteedOrderWithSingleSubscriber = false, false
			}
			// Unacked messages of a closed member come back to the group
			// sooner on the brokers that redeliver on a timer.
			cfg.AckTimeout = 5 * time.Second
			names := &usedNames{topics: make(map[string]map[string]bool)}
			t.Cleanup(func() { names.drop(t, cfg) })
			pubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
				ctx := context.Background()
				pub, err := broker.NewPublisher(ctx, cfg)
				require.NoError(t, err)
				var sub message.Subscriber
				if tr.kind == broker.KindKafka {
					sub = &groupPerTopic{cfg: cfg, group: group, names: names}
				} else {
					sub, err = broker.NewSubscriber(ctx, cfg, group)
					require.NoError(t, err)
				}
				// The suite's TestPublishSubscribeInOrder closes its
				// subscribers before it creates them (a defer's argument,
				// evaluated at once): close whatever it leaves open.
				t.Cleanup(func() {
					_ = sub.Close()
					_ = pub.Close()
				})
				return trackedPublisher{pub, names}, trackedSubscriber{sub, names, group}
			}
			tests.TestPubSub(t, features,
				func(t *testing.T) (message.Publisher, message.Subscriber) { return pubSub(t, testGroup(t)) },
				pubSub)
		})
	}
}

// testGroup is the group of every subscriber one test of the suite creates
// without naming one: one per test, since on Kafka a member joining or
// leaving a group rebalances all of its topics, and the tests run at once.
func testGroup(t *testing.T) string {
	sum := sha256.Sum256([]byte(t.Name()))
	return "universal-" + hex.EncodeToString(sum[:8])
}

// usedNames remembers the topics and groups the suite used, to remove
// them from the shared brokers afterwards.
type usedNames struct {
	mu     sync.Mutex
	topics map[string]map[string]bool // topic → groups
}

func (n *usedNames) add(topic, group string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.topics[topic] == nil {
		n.topics[topic] = make(map[string]bool)
	}
	if group != "" {
		n.topics[topic][group] = true
	}
}

func (n *usedNames) drop(t testing.TB, cfg broker.Config) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for topic, groups := range n.topics {
		var gs []string
		for g := range groups {
			gs = append(gs, g)
		}
		dropTopic(t, cfg, topic, gs)
	}
}

type trackedPublisher struct {
	message.Publisher
	names *usedNames
}

func (p trackedPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.names.add(topic, "")
	return p.Publisher.Publish(topic, msgs...)
}

type trackedSubscriber struct {
	message.Subscriber
	names *usedNames
	group string
}

func (s trackedSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.names.add(topic, s.group)
	return s.Subscriber.Subscribe(ctx, topic)
}

func (s trackedSubscriber) SubscribeInitialize(topic string) error {
	s.names.add(topic, s.group)
	return s.Subscriber.(message.SubscribeInitializer).SubscribeInitialize(topic)
}

// groupPerTopic is the suite's Kafka subscriber: a group per topic, as
// outboxd uses its groups (a handler's group reads one topic).
// watermill-kafka makes each Subscribe a member of the group of its own,
// and a Kafka group spans topics, so a second topic subscribed in the same
// group rebalances the first; the suite's TestTopic gives that 15 s, which
// a loaded CI machine can exceed.
type groupPerTopic struct {
	cfg   broker.Config
	group string
	names *usedNames // records each topic's group, for the clean-up

	mu   sync.Mutex
	subs map[string]message.Subscriber
}

func (g *groupPerTopic) member(topic string) (message.Subscriber, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if sub, ok := g.subs[topic]; ok {
		return sub, nil
	}
	sum := sha256.Sum256([]byte(topic))
	group := g.group + "-" + hex.EncodeToString(sum[:8]) // within Kafka's 64 characters
	g.names.add(topic, group)
	sub, err := broker.NewSubscriber(context.Background(), g.cfg, group)
	if err != nil {
		return nil, err
	}
	if g.subs == nil {
		g.subs = make(map[string]message.Subscriber)
	}
	g.subs[topic] = sub
	return sub, nil
}

func (g *groupPerTopic) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	sub, err := g.member(topic)
	if err != nil {
		return nil, err
	}
	return sub.Subscribe(ctx, topic)
}

func (g *groupPerTopic) SubscribeInitialize(topic string) error {
	sub, err := g.member(topic)
	if err != nil {
		return err
	}
	return sub.(message.SubscribeInitializer).SubscribeInitialize(topic)
}

func (g *groupPerTopic) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for _, sub := range g.subs {
		errs = append(errs, sub.Close())
	}
	return errors.Join(errs...)
}
