package nestjs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// kafkaDialTimeout bounds connecting to a broker; sarama waits 30 s.
const kafkaDialTimeout = 10 * time.Second

// kafkaSender produces each event to the topic named by its pattern, with
// the data alone as the value (what a NestJS Kafka consumer's
// @EventPattern handler receives, parsed) and the outbox key as the key,
// and waits for every in-sync replica to have it.
type kafkaSender struct {
	client   sarama.Client
	producer sarama.SyncProducer
}

func newKafkaSender(cfg Config) (*kafkaSender, error) {
	sc := sarama.NewConfig()
	sc.ClientID = "outboxd-nestjs"
	sc.Net.DialTimeout = kafkaDialTimeout
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	client, err := sarama.NewClient(strings.Split(cfg.URL, ","), sc)
	if err != nil {
		return nil, fmt.Errorf("connect to Kafka: %w", err)
	}
	topics, err := client.Topics()
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("list Kafka topics: %w", err)
	}
	if err := checkKafkaNames(cfg.Events, append(topics, cfg.KafkaTopicsInUse...)); err != nil {
		_ = client.Close()
		return nil, err
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	return &kafkaSender{client: client, producer: producer}, nil
}

// send ignores ctx: sarama bounds the produce request by its own timeouts.
func (s *kafkaSender) send(_ context.Context, o outgoing) error {
	m := &sarama.ProducerMessage{
		Topic: o.pattern,
		Value: sarama.ByteEncoder(o.data),
		Headers: []sarama.RecordHeader{
			{Key: []byte("message_id"), Value: []byte(o.messageID)},
		},
	}
	if o.key != "" {
		m.Key = sarama.StringEncoder(o.key)
	}
	if _, _, err := s.producer.SendMessage(m); err != nil {
		return fmt.Errorf("produce to Kafka topic %s: %w", o.pattern, err)
	}
	return nil
}

func (s *kafkaSender) close() error {
	// Closing the producer leaves the client it was made from open.
	return errors.Join(s.producer.Close(), s.client.Close())
}
