package broker

import (
	"context"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"

	"github.com/outboxd/outboxd/relay"
)

// NewPublisherWrapping is NewPublisher with the Kafka producer and the
// PostgreSQL transactions wrapped by the given decorators (nil leaves one
// as it is), for tests that make one message fail where the broker cannot
// be made to.
func NewPublisherWrapping(ctx context.Context, cfg Config,
	kafka func(sarama.SyncProducer) sarama.SyncProducer, postgres func(pgx.Tx) pgx.Tx,
) (relay.BatchPublisher, error) {
	return newPublisher(ctx, cfg, clientHooks{kafkaProducer: kafka, postgresTx: postgres})
}

// ErrAMQPNack is a RabbitMQ publisher confirm's nack.
var ErrAMQPNack = errAMQPNack

// DropAMQPConnection closes the connection of a RabbitMQ subscriber from
// NewSubscriber, as a RabbitMQ restart would end it, for tests of what its
// subscriptions do when their channels are lost.
func DropAMQPConnection(sub message.Subscriber) error {
	s := sub.(*subscriber).transport.(*amqpSubscriber)
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return s.conn.Close()
}
