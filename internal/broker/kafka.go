package broker

import (
	"fmt"
	"strings"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/outboxd/outboxd/outbox"
)

func kafkaBrokers(cfg Config) []string {
	var brokers []string
	for b := range strings.SplitSeq(cfg.URL, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	return brokers
}

// kafkaMarshaler is Watermill's default Kafka marshaler (UUID and metadata as
// record headers) with the outbox key as the record key, so that one key's
// messages share a partition and keep their order.
var kafkaMarshaler = kafka.NewWithPartitioningMarshaler(func(_ string, msg *message.Message) (string, error) {
	return msg.Metadata.Get(outbox.MetadataKey), nil
})

func newKafkaPublisher(cfg Config, logger watermill.LoggerAdapter) (*publisher, error) {
	sc := kafka.DefaultSaramaSyncPublisherConfig()
	// Stored on every in-sync replica, and written once even when sarama
	// retries, so that a retry cannot reorder or duplicate a key's records.
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.ClientID = "outboxd"
	p, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers:               kafkaBrokers(cfg),
		Marshaler:             kafkaMarshaler,
		OverwriteSaramaConfig: sc,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("connect to Kafka: %w", err)
	}
	return &publisher{transport: p}, nil
}

func newKafkaSubscriber(cfg Config, group string, logger watermill.LoggerAdapter) (*subscriber, error) {
	sc := kafka.DefaultSaramaSubscriberConfig()
	// A new group reads the topic from its start, as on the other brokers.
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.ClientID = "outboxd"
	s, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               kafkaBrokers(cfg),
		Unmarshaler:           kafkaMarshaler,
		OverwriteSaramaConfig: sc,
		ConsumerGroup:         group,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("connect to Kafka: %w", err)
	}
	return &subscriber{transport: s}, nil
}
