package broker

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
)

// amqpPublishChannels is the number of AMQP channels a publisher keeps open.
// Without a pool, watermill-amqp opens and closes a channel, and puts it in
// confirm mode, on every Publish.
const amqpPublishChannels = 8

// amqpPrefetch is how many unacked messages RabbitMQ hands one member of a
// group ahead of its acks. On close they go back to the queue at once.
const amqpPrefetch = 16

// amqpConfig is Watermill's durable pub/sub: a durable fanout exchange named
// after the topic, a durable queue per group (topic_group) bound to it and
// persistent messages.
func amqpConfig(cfg Config, group string) wmamqp.Config {
	c := wmamqp.NewDurablePubSubConfig(cfg.URL, wmamqp.GenerateQueueNameTopicNameWithSuffix(group))
	// Without confirms Publish returns once the bytes are written, and a
	// broker crash right then loses messages the relay already deleted.
	c.Publish.ConfirmDelivery = true
	c.Publish.ChannelPoolSize = amqpPublishChannels
	c.Consume.Qos.PrefetchCount = amqpPrefetch
	return c
}

func newAMQPPublisher(cfg Config, logger watermill.LoggerAdapter) (*publisher, error) {
	p, err := wmamqp.NewPublisher(amqpConfig(cfg, ""), logger)
	if err != nil {
		// amqp091's dial errors name the host, never the URL's password.
		return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	return &publisher{transport: p}, nil
}

func newAMQPSubscriber(cfg Config, group string, logger watermill.LoggerAdapter) (*subscriber, error) {
	s, err := wmamqp.NewSubscriber(amqpConfig(cfg, group), logger)
	if err != nil {
		return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	return &subscriber{transport: s}, nil
}
