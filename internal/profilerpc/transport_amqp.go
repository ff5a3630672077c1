package profilerpc

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/outboxd/outboxd/internal/broker"
)

// amqpPublishChannels is the number of channels a publisher keeps open;
// without a pool watermill-amqp opens and closes a channel per Publish.
const amqpPublishChannels = 8

// amqpReplyPrefetch is how many replies RabbitMQ pushes to a Client ahead
// of its acks; the Client acks each as soon as it has handed it over.
const amqpReplyPrefetch = 64

// newAMQPTransport uses the default exchange, which routes a message to the
// queue named by its routing key: requests to the durable queue of the
// request topic, replies to the Client's exclusive queue.
func newAMQPTransport(bcfg broker.Config, r role, concurrency int, logger watermill.LoggerAdapter) (*transport, error) {
	pub, err := wmamqp.NewPublisher(amqpPublisherConfig(bcfg.URL), logger)
	if err != nil {
		// amqp091's dial errors name the host, never the URL's password.
		return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	subCfg := amqpRequestQueueConfig(bcfg.URL)
	if r == roleClient {
		subCfg = amqpReplyQueueConfig(bcfg.URL)
	}
	s, err := wmamqp.NewSubscriber(subCfg, logger)
	if err != nil {
		_ = pub.Close()
		return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	var sub message.Subscriber = s
	if r == roleServer {
		// A watermill-amqp subscription hands over one message at a time:
		// concurrency consumers on the queue work on that many at once.
		sub = &fanIn{Subscriber: s, n: concurrency}
	}
	return &transport{pub: pub, sub: sub}, nil
}

// amqpHeartbeat is how often RabbitMQ and the client check the connection;
// amqp091's own default.
const amqpHeartbeat = 10 * time.Second

// amqpConnection dials url within connectTimeout (amqp091 waits 30 s by
// default), so that a Client stopping while the broker is unreachable
// stops in time.
func amqpConnection(url string) wmamqp.ConnectionConfig {
	return wmamqp.ConnectionConfig{
		AmqpURI: url,
		AmqpConfig: &amqp091.Config{
			Heartbeat: amqpHeartbeat,
			Locale:    "en_US",
			Dial:      amqp091.DefaultDial(connectTimeout),
		},
	}
}

// amqpPublisherConfig publishes through the default exchange with the topic
// as routing key, transient (nothing here is worth a disk write), and with
// the request's remaining time as its expiration (amqpMarshaler).
func amqpPublisherConfig(url string) wmamqp.Config {
	c := wmamqp.NewNonDurableQueueConfig(url)
	c.Connection = amqpConnection(url)
	c.Marshaler = amqpMarshaler{wmamqp.DefaultMarshaler{NotPersistentDeliveryMode: true}}
	c.Publish.ChannelPoolSize = amqpPublishChannels
	return c
}

// amqpRequestQueueConfig consumes the request topic's queue, shared by every
// service. Durable, so that it keeps requests while the services restart
// (until they expire), one unacked message per consumer.
func amqpRequestQueueConfig(url string) wmamqp.Config {
	c := wmamqp.NewDurableQueueConfig(url)
	c.Connection = amqpConnection(url)
	c.Marshaler = amqpMarshaler{wmamqp.DefaultMarshaler{NotPersistentDeliveryMode: true}}
	return c
}

// amqpReplyQueueConfig consumes a Client's own reply queue: exclusive to
// its connection and deleted by RabbitMQ when the connection ends, so a
// Client that dies leaves nothing behind and replies to it are dropped.
// watermill-amqp declares the queue again after a reconnect.
func amqpReplyQueueConfig(url string) wmamqp.Config {
	c := wmamqp.NewNonDurableQueueConfig(url)
	c.Connection = amqpConnection(url)
	c.Marshaler = amqpMarshaler{wmamqp.DefaultMarshaler{NotPersistentDeliveryMode: true}}
	c.Queue.AutoDelete = true
	c.Queue.Exclusive = true
	c.Consume.Exclusive = true
	c.Consume.Qos.PrefetchCount = amqpReplyPrefetch
	return c
}

// amqpMarshaler is watermill-amqp's marshaler with one addition: a message
// carrying MetadataTimeoutMS expires after that many milliseconds, so
// RabbitMQ drops a request nobody took in time instead of handing a stale
// one to a service that comes back later.
type amqpMarshaler struct {
	wmamqp.DefaultMarshaler
}

// Marshal implements wmamqp.Marshaler.
func (m amqpMarshaler) Marshal(msg *message.Message) (amqp091.Publishing, error) {
	p, err := m.DefaultMarshaler.Marshal(msg)
	if err != nil {
		return p, err
	}
	if ms := msg.Metadata.Get(MetadataTimeoutMS); ms != "" {
		p.Expiration = ms
	}
	return p, nil
}
