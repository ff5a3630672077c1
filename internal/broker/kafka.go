package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rcrowley/go-metrics"

	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// Sarama records its metrics in go-metrics, which outboxd exports nowhere;
// each meter there also starts a goroutine that ticks forever. Sarama's
// documented way to turn them off is this package-level switch.
func init() { metrics.UseNilMetrics = true }

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

// kafkaProducerHook wraps the producer a publisher sends with; nil keeps
// sarama's.
type kafkaProducerHook func(sarama.SyncProducer) sarama.SyncProducer

func newKafkaPublisher(cfg Config, hook kafkaProducerHook) (*publisher, error) {
	sc := kafka.DefaultSaramaSyncPublisherConfig()
	// Stored on every in-sync replica, and written once even when sarama
	// retries, so that a retry cannot reorder or duplicate a key's records.
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.ClientID = "outboxd"
	producer, err := sarama.NewSyncProducer(kafkaBrokers(cfg), sc)
	if err != nil {
		return nil, fmt.Errorf("connect to Kafka: %w", err)
	}
	if hook != nil {
		producer = hook(producer)
	}
	return &publisher{transport: &kafkaPublisher{producer: producer}}, nil
}

// kafkaPublisher hands a whole run to sarama at once and reports each
// record's fate. Sarama sends a broker the records it leads in one produce
// request per batch (up to Producer.MaxMessageBytes), a batch being what
// came while the previous request was in flight: a run takes a round trip
// or two, not one per record. Sarama takes no context: ctx is looked at
// before sending, and a run sent waits for sarama's own timeouts
// (Producer.Timeout, Producer.Retry). It publishes what watermill-kafka's publisher would, with
// kafkaMarshaler.
type kafkaPublisher struct {
	producer sarama.SyncProducer
}

func (p *kafkaPublisher) publishRun(ctx context.Context, run []relay.Outgoing) []error {
	errs := make([]error, len(run))
	if err := ctx.Err(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	records := make([]*sarama.ProducerMessage, 0, len(run))
	at := make([]int, 0, len(run))
	for i, o := range run {
		record, err := kafkaMarshaler.Marshal(o.Topic, o.Message)
		if err != nil {
			errs[i] = fmt.Errorf("marshal message %s: %w", o.Message.UUID, err)
			continue
		}
		records = append(records, record)
		at = append(at, i)
	}
	err := p.producer.SendMessages(records)
	var failed sarama.ProducerErrors
	switch {
	case err == nil:
		return errs
	case !errors.As(err, &failed):
		for _, i := range at {
			errs[i] = err
		}
		return errs
	}
	byRecord := make(map[*sarama.ProducerMessage]error, len(failed))
	for _, f := range failed {
		byRecord[f.Msg] = f.Err
	}
	var tooLarge []int
	for j, record := range records {
		i := at[j]
		if errs[i] = byRecord[record]; errors.Is(errs[i], sarama.ErrMessageSizeTooLarge) {
			tooLarge = append(tooLarge, i)
		}
	}
	if len(tooLarge) > 1 {
		// The broker refuses a partition's whole batch when it is over the
		// topic's max.message.bytes, so one large record fails the others
		// it was batched with: each is tried alone to find which.
		for _, i := range tooLarge {
			errs[i] = p.sendAlone(run[i])
		}
	}
	return errs
}

func (p *kafkaPublisher) sendAlone(o relay.Outgoing) error {
	record, err := kafkaMarshaler.Marshal(o.Topic, o.Message)
	if err != nil {
		return fmt.Errorf("marshal message %s: %w", o.Message.UUID, err)
	}
	_, _, err = p.producer.SendMessage(record)
	return err
}

func (p *kafkaPublisher) close() error { return p.producer.Close() }

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
