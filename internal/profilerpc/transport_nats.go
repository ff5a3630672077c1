package profilerpc

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"

	"github.com/outboxd/outboxd/internal/broker"
)

// natsAckWait bounds how long a subscription waits for the handler of one
// request before it takes the next. Core NATS has no redelivery, so this
// only matters for a handler that hangs.
const natsAckWait = 30 * time.Second

// natsCloseTimeout bounds how long closing a subscriber waits for the
// messages in hand.
const natsCloseTimeout = 10 * time.Second

// newNATSTransport connects twice to NATS (broker.ConnectNATS: once
// connected, it never gives up, and requests meanwhile time out) and uses
// core subjects (JetStream off): requests and replies live only as long as
// someone waits for them.
func newNATSTransport(ctx context.Context, bcfg broker.Config, r role, concurrency int, logger watermill.LoggerAdapter) (*transport, error) {
	pubConn, err := broker.ConnectNATS(ctx, bcfg, r.String()+" publisher")
	if err != nil {
		return nil, err
	}
	pub, err := wmnats.NewPublisherWithNatsConn(pubConn, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream:         wmnats.JetStreamConfig{Disabled: true},
	}, logger)
	if err != nil {
		pubConn.Close()
		return nil, fmt.Errorf("watermill publisher: %w", err)
	}

	subConn, err := broker.ConnectNATS(ctx, bcfg, r.String()+" subscriber")
	if err != nil {
		_ = pub.Close()
		return nil, err
	}
	cfg := wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:       &wmnats.NATSMarshaler{},
		SubscribersCount:  1,
		AckWaitTimeout:    natsAckWait,
		CloseTimeout:      natsCloseTimeout,
		SubscribeTimeout:  natsCloseTimeout,
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream:         wmnats.JetStreamConfig{Disabled: true},
	}
	if r == roleServer {
		// Each subscription hands over one message at a time and waits for
		// its ack: concurrency subscriptions in the queue group let a
		// service work on that many requests at once.
		cfg.QueueGroupPrefix = QueueGroup
		cfg.SubscribersCount = concurrency
	}
	sub, err := wmnats.NewSubscriberWithNatsConn(subConn, cfg, logger)
	if err != nil {
		subConn.Close()
		_ = pub.Close()
		return nil, fmt.Errorf("watermill subscriber: %w", err)
	}
	return &transport{pub: pub, sub: sub, flush: subConn.FlushWithContext}, nil
}
