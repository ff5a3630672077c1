package broker

import (
	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
)

// amqpPublishChannels is the number of idle confirm-mode channels a
// publisher keeps between runs; a run holds one channel, and concurrent
// runs open more.
const amqpPublishChannels = 8

// amqpPrefetch is how many unacked messages RabbitMQ hands one member of a
// group ahead of its acks, at least: Config.InFlight when that is more. On
// close they go back to the queue at once.
const amqpPrefetch = 16

// amqpConfig is Watermill's durable pub/sub: a durable fanout exchange named
// after the topic, a durable queue per group (topic_group) bound to it and
// persistent messages. amqpPublisher publishes with it, confirms on, and
// amqpSubscriber consumes with it.
func amqpConfig(cfg Config, group string) wmamqp.Config {
	c := wmamqp.NewDurablePubSubConfig(cfg.URL, wmamqp.GenerateQueueNameTopicNameWithSuffix(group))
	c.Consume.Qos.PrefetchCount = max(amqpPrefetch, cfg.InFlight)
	return c
}

// newAMQPSubscriber connects to RabbitMQ for the group's subscriptions,
// which hand on up to cfg.InFlight messages before the first is answered.
func newAMQPSubscriber(cfg Config, group string, logger watermill.LoggerAdapter) (*subscriber, error) {
	s := &amqpSubscriber{
		config:   amqpConfig(cfg, group),
		inFlight: cfg.InFlight,
		logger:   logger,
	}
	if _, err := s.connection(); err != nil {
		return nil, err
	}
	return &subscriber{transport: s, initialize: s.SubscribeInitialize}, nil
}
