package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/relay"
)

// fateRunKeys is how many other keys share the failing message's run.
const fateRunKeys = 8

// fateCase makes the first message of a run fail on one transport.
type fateCase struct {
	name      string
	permanent bool
	// setup readies the broker and returns the run's first message, which
	// is to fail, and heal, which makes its retry succeed (transient cases
	// only). The other messages go to topic, whose group is subscribed.
	setup func(t *testing.T, cfg broker.Config, pub relay.BatchPublisher, topic string) (first relay.Outgoing, heal func())
	// wrap builds the publisher instead of NewPublisher, with a decorated
	// client.
	wrap func(t *testing.T, cfg broker.Config) relay.BatchPublisher
	// allOrNothing: the transport stores a run in one transaction, so a
	// transient failure is every message's.
	allOrNothing bool
}

// TestPublishBatchReportsEachMessagesFate makes the first message of a
// pipelined run fail, permanently and transiently, on every transport, and
// checks that the rest of the run is stored and the failure is reported for
// that message alone, classified as IsPermanent says, so that the relay
// holds back only that key. The broker's own limits and refusals do it
// where it has them; where one message cannot fail alone, a decorator
// around the transport's client does (named in each case).
func TestPublishBatchReportsEachMessagesFate(t *testing.T) {
	t.Parallel()
	cases := map[broker.Kind][]fateCase{
		broker.KindNATS: {
			{name: "over the stream's max_msg_size", permanent: true, setup: natsCappedStream},
			{name: "over the server's max_payload", permanent: true, setup: hugeMessage},
			{name: "stream deleted under the publisher", setup: natsDeletedStream},
		},
		broker.KindAMQP: {
			// RabbitMQ refuses nothing for good message by message: an
			// oversized message closes the whole channel.
			{name: "invalid topic", permanent: true, setup: invalidTopic},
			{name: "queue full with reject-publish", setup: amqpFullQueue},
		},
		broker.KindRedis: {
			// Redis has no permanent per-message refusal.
			{name: "invalid topic", permanent: true, setup: invalidTopic},
			{name: "topic key of another type", setup: redisWrongType},
		},
		broker.KindKafka: {
			{name: "over the topic's max.message.bytes", permanent: true, setup: kafkaCappedTopic},
			{name: "over sarama's Producer.MaxMessageBytes", permanent: true, setup: hugeMessage},
			// Sarama retries what a broker refuses for a while; a decorator
			// around the sarama SyncProducer fails the first record once.
			{name: "not leader, from a wrapped producer", setup: firstAsIs, wrap: kafkaFailsFirstOnce},
		},
		broker.KindPostgres: {
			{name: "uuid longer than its column", permanent: true, setup: postgresLongUUID},
			// A transaction fails whole: a decorator around the pgx.Tx
			// fails the run's commit once.
			{name: "commit fails, from a wrapped transaction", setup: firstAsIs, wrap: postgresCommitFailsOnce, allOrNothing: true},
		},
	}
	for _, tr := range transports() {
		t.Run(string(tr.kind), func(t *testing.T) {
			t.Parallel()
			for _, fc := range cases[tr.kind] {
				t.Run(fc.name, func(t *testing.T) {
					t.Parallel()
					testFate(t, tr.kind, tr.config(t), fc)
				})
			}
		})
	}
}

func testFate(t *testing.T, kind broker.Kind, cfg broker.Config, fc fateCase) {
	ctx, cancel := context.WithTimeout(context.Background(), receiveTimeout)
	defer cancel()
	topic := uniqueTopic(t, cfg, "fate")
	var pub relay.BatchPublisher
	if fc.wrap != nil {
		pub = fc.wrap(t, cfg)
	} else {
		pub = newPublisher(t, cfg).(relay.BatchPublisher)
	}
	// Before the subscriber, which would create the topic on its own terms.
	first, heal := fc.setup(t, cfg, pub, topic)
	_, ch := subscribe(t, cfg, "fate", topic)
	if first.Topic == "" {
		first.Topic = topic
	}
	run := []relay.Outgoing{first}
	for i := range fateRunKeys {
		run = append(run, relay.Outgoing{Topic: topic, Message: sample(i+1, fmt.Sprintf("k%d", i+1))})
	}

	errs := pub.PublishBatch(ctx, run)
	require.Len(t, errs, len(run))
	require.Error(t, errs[0], "the first message was to fail")
	require.Equal(t, fc.permanent, broker.IsPermanent(kind, errs[0]), "IsPermanent(%v)", errs[0])
	t.Logf("first message: %v", errs[0])
	if fc.allOrNothing {
		for i, err := range errs {
			require.EqualError(t, err, errs[0].Error(), "message %d shares the transaction's fate", i)
		}
		requireNothingMore(t, ch)
	} else {
		for i, err := range errs[1:] {
			require.NoError(t, err, "message %d of the run", i+1)
		}
		requireReceived(t, ch, run[1:])
	}
	if heal == nil {
		// Nothing stored for the failed message either.
		requireNothingMore(t, ch)
		return
	}
	heal()
	retry := run[:1]
	if fc.allOrNothing {
		retry = run
	}
	for i, err := range pub.PublishBatch(ctx, retry) {
		require.NoError(t, err, "retry of message %d", i)
	}
	if first.Topic == topic {
		requireReceived(t, ch, retry)
	}
}

// requireReceived acks the next len(want) messages of ch and requires
// them to be want's, in any order.
func requireReceived(t *testing.T, ch <-chan *message.Message, want []relay.Outgoing) {
	t.Helper()
	got := collect(ch, len(want), receiveTimeout)
	require.Len(t, got, len(want), "messages received within %s", receiveTimeout)
	byID := make(map[string]*message.Message, len(want))
	for _, o := range want {
		byID[o.Message.UUID] = o.Message
	}
	for _, msg := range got {
		sent, ok := byID[msg.UUID]
		require.True(t, ok, "unexpected message %s", msg.UUID)
		requireIntact(t, sent, msg)
	}
}

func requireNothingMore(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	select {
	case msg := <-ch:
		require.FailNow(t, "stored", "message %s arrived, its publish failed", msg.UUID)
	case <-time.After(500 * time.Millisecond):
	}
}

// firstAsIs is a plain first message, for decorators that fail it.
func firstAsIs(*testing.T, broker.Config, relay.BatchPublisher, string) (relay.Outgoing, func()) {
	return relay.Outgoing{Message: sample(0, "k0")}, func() {}
}

// invalidTopic is a topic no broker can carry, refused before it is sent.
func invalidTopic(*testing.T, broker.Config, relay.BatchPublisher, string) (relay.Outgoing, func()) {
	return relay.Outgoing{Topic: "not a topic", Message: sample(0, "k0")}, nil
}

// natsCappedStream is an operator's stream for the topic with a 1 KiB
// max_msg_size: JetStream refuses the 4 KiB first message, and only it.
func natsCappedStream(t *testing.T, cfg broker.Config, _ relay.BatchPublisher, topic string) (relay.Outgoing, func()) {
	js := natsJetStream(t, cfg)
	_, err := js.AddStream(&nats.StreamConfig{Name: strings.ReplaceAll(topic, ".", "_"), Subjects: []string{topic}, MaxMsgSize: 1024})
	require.NoError(t, err)
	big := sample(0, "k0")
	big.Payload = make([]byte, 4096)
	return relay.Outgoing{Message: big}, nil
}

// natsDeletedStream is another topic whose stream the publisher created
// and an operator then deleted: nothing answers the first message, and the
// retry creates the stream again.
func natsDeletedStream(t *testing.T, cfg broker.Config, pub relay.BatchPublisher, _ string) (relay.Outgoing, func()) {
	other := uniqueTopic(t, cfg)
	require.NoError(t, pub.Publish(other, sample(-1, "k0")))
	require.NoError(t, natsJetStream(t, cfg).DeleteStream(strings.ReplaceAll(other, ".", "_")))
	return relay.Outgoing{Topic: other, Message: sample(0, "k0")}, func() {}
}

func natsJetStream(t *testing.T, cfg broker.Config) nats.JetStreamContext {
	nc, err := nats.Connect(cfg.URL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := nc.JetStream()
	require.NoError(t, err)
	return js
}

// amqpFullQueue is another topic bound to a queue of length 0 that rejects
// publishes: RabbitMQ nacks the first message; the retry succeeds once the
// queue is gone.
func amqpFullQueue(t *testing.T, cfg broker.Config, _ relay.BatchPublisher, _ string) (relay.Outgoing, func()) {
	other := uniqueTopic(t, cfg, "full")
	conn, err := amqp091.Dial(cfg.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.ExchangeDeclare(other, "fanout", true, false, false, false, nil))
	queue := other + "_full"
	_, err = ch.QueueDeclare(queue, true, false, false, false, amqp091.Table{"x-max-length": 0, "x-overflow": "reject-publish"})
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(queue, "", other, false, nil))
	return relay.Outgoing{Topic: other, Message: sample(0, "k0")}, func() {
		_, err := ch.QueueDelete(queue, false, false, false)
		require.NoError(t, err)
	}
}

// redisWrongType is another topic whose key holds a string: Redis answers
// the first message's XADD with WRONGTYPE, and the retry succeeds once the
// key is gone.
func redisWrongType(t *testing.T, cfg broker.Config, _ relay.BatchPublisher, _ string) (relay.Outgoing, func()) {
	other := uniqueTopic(t, cfg)
	opts, err := redis.ParseURL(cfg.URL)
	require.NoError(t, err)
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ctx := context.Background()
	require.NoError(t, client.Set(ctx, other, "not a stream", 0).Err())
	return relay.Outgoing{Topic: other, Message: sample(0, "k0")}, func() {
		require.NoError(t, client.Del(ctx, other).Err())
	}
}

// kafkaCappedTopic creates the topic with a 1 KiB max.message.bytes: the
// broker refuses the batch of the partition holding the 4 KiB first
// message, with the others batched with it (two partitions, eight keys:
// some share it), which the publisher then sends alone.
func kafkaCappedTopic(t *testing.T, cfg broker.Config, _ relay.BatchPublisher, topic string) (relay.Outgoing, func()) {
	sc := sarama.NewConfig()
	admin, err := sarama.NewClusterAdmin(strings.Split(cfg.URL, ","), sc)
	require.NoError(t, err)
	defer admin.Close()
	limit := "1024"
	err = admin.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"max.message.bytes": &limit},
	}, false)
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		require.NoError(t, err)
	}
	big := sample(0, "k0")
	big.Payload = make([]byte, 4096)
	return relay.Outgoing{Message: big}, nil
}

// hugeMessage is 2 MiB, over the NATS server's 1 MiB max_payload (nats.go
// refuses it before sending) and over sarama's 1 MiB
// Producer.MaxMessageBytes (sarama does).
func hugeMessage(*testing.T, broker.Config, relay.BatchPublisher, string) (relay.Outgoing, func()) {
	huge := sample(0, "k0")
	huge.Payload = make([]byte, 2<<20)
	return relay.Outgoing{Message: huge}, nil
}

// kafkaFailsFirstOnce wraps the sarama producer so that the first record
// of the first run fails with a retriable broker error and the rest go to
// the broker.
func kafkaFailsFirstOnce(t *testing.T, cfg broker.Config) relay.BatchPublisher {
	pub, err := broker.NewPublisherWrapping(context.Background(), cfg, func(p sarama.SyncProducer) sarama.SyncProducer {
		return &failFirstProducer{SyncProducer: p}
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

type failFirstProducer struct {
	sarama.SyncProducer
	failed atomic.Bool
}

func (p *failFirstProducer) SendMessages(msgs []*sarama.ProducerMessage) error {
	if len(msgs) == 0 || p.failed.Swap(true) {
		return p.SyncProducer.SendMessages(msgs)
	}
	failed := sarama.ProducerErrors{{Msg: msgs[0], Err: sarama.ErrNotLeaderForPartition}}
	if err := p.SyncProducer.SendMessages(msgs[1:]); err != nil {
		var rest sarama.ProducerErrors
		if !errors.As(err, &rest) {
			return err
		}
		failed = append(failed, rest...)
	}
	return failed
}

// postgresLongUUID has a UUID longer than watermill-sql's VARCHAR(36)
// column: PostgreSQL refuses the row (22001), and the run is stored again
// message by message so that only it fails.
func postgresLongUUID(*testing.T, broker.Config, relay.BatchPublisher, string) (relay.Outgoing, func()) {
	msg := sample(0, "k0")
	msg.UUID = strings.Repeat("x", 40)
	return relay.Outgoing{Message: msg}, nil
}

// postgresCommitFailsOnce wraps the publisher's transactions so that the
// first commit fails with a serialization failure, which a retry passes.
func postgresCommitFailsOnce(t *testing.T, cfg broker.Config) relay.BatchPublisher {
	var failed atomic.Bool
	pub, err := broker.NewPublisherWrapping(context.Background(), cfg, nil, func(tx pgx.Tx) pgx.Tx {
		return &failCommitTx{Tx: tx, failed: &failed}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

type failCommitTx struct {
	pgx.Tx
	failed *atomic.Bool
}

func (tx *failCommitTx) Commit(ctx context.Context) error {
	if tx.failed.Swap(true) {
		return tx.Tx.Commit(ctx)
	}
	_ = tx.Tx.Rollback(ctx)
	return &pgconn.PgError{Code: "40001", Message: "could not serialize access (injected)"}
}
