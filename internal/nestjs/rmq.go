package nestjs

import (
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// rmqDialTimeout bounds connecting to RabbitMQ; amqp091 waits 30 s.
const rmqDialTimeout = 10 * time.Second

// rmqHeartbeat is how often RabbitMQ and outboxd check the connection;
// amqp091's own default.
const rmqHeartbeat = 10 * time.Second

// rmqDial connects to RabbitMQ as connection "outboxd <name>" (what the
// management UI shows).
func rmqDial(url, name string) (*amqp091.Connection, error) {
	conn, err := amqp091.DialConfig(url, amqp091.Config{
		Heartbeat:  rmqHeartbeat,
		Locale:     "en_US",
		Dial:       amqp091.DefaultDial(rmqDialTimeout),
		Properties: amqp091.Table{"connection_name": "outboxd " + name},
	})
	if err != nil {
		// amqp091's dial errors name the host, never the URL's password.
		return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	return conn, nil
}

// rmqDeclare declares queue as a NestJS service or client with the default
// queueOptions ({}) does through amqplib: durable, not exclusive, not
// auto-deleted, no arguments. RabbitMQ refuses a declaration that differs
// from the queue's, so a peer must declare it the same way.
func rmqDeclare(ch *amqp091.Channel, queue string) error {
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare queue %s as NestJS does (durable, no arguments): %w", queue, err)
	}
	return nil
}
