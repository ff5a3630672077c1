package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
)

// TestIsPermanentOnNATS makes a real JetStream server reject messages for
// good: each rejection is classified permanent.
func TestIsPermanentOnNATS(t *testing.T) {
	t.Parallel()
	natsURL := startNATS(t)
	pub := newPublisher(t, testConfig(broker.KindNATS, natsURL))

	t.Run("over max_payload", func(t *testing.T) {
		t.Parallel()
		topic := "big." + randomHex(4)
		huge := message.NewMessage("huge", make([]byte, 2<<20)) // the server's max_payload is 1 MiB
		err := pub.Publish(topic, huge)
		require.ErrorIs(t, err, nats.ErrMaxPayload)
		require.True(t, broker.IsPermanent(broker.KindNATS, err), "%v", err)
	})

	t.Run("over the stream's max_msg_size", func(t *testing.T) {
		t.Parallel()
		topic := "capped." + randomHex(4)
		nc, err := nats.Connect(natsURL)
		require.NoError(t, err)
		defer nc.Close()
		js, err := nc.JetStream()
		require.NoError(t, err)
		// An operator's stream: the publisher uses it as it is.
		_, err = js.AddStream(&nats.StreamConfig{Name: "capped_" + topic[len("capped."):], Subjects: []string{topic}, MaxMsgSize: 1024})
		require.NoError(t, err)

		err = pub.Publish(topic, message.NewMessage("big", make([]byte, 4096)))
		require.Error(t, err)
		require.True(t, broker.IsPermanent(broker.KindNATS, err), "%v", err)
		require.NoError(t, pub.Publish(topic, message.NewMessage("small", make([]byte, 512))))
	})

	t.Run("invalid topic", func(t *testing.T) {
		t.Parallel()
		err := pub.Publish("user created", message.NewMessage("x", nil))
		require.ErrorIs(t, err, broker.ErrInvalidTopic)
		require.True(t, broker.IsPermanent(broker.KindNATS, err))
	})

}

// TestNATSOutageIsNotPermanent stops the server under a publisher: the
// failure is not permanent, and once the server is back on the same port and
// store the same publisher publishes again and nothing stored was lost.
func TestNATSOutageIsNotPermanent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	natsURL, stop, err := broker.StartEmbeddedNATS(ctx, dir)
	require.NoError(t, err)
	t.Cleanup(stop)
	cfg := testConfig(broker.KindNATS, natsURL)
	pub := newPublisher(t, cfg)
	topic := "outage." + randomHex(4)
	before := message.NewMessage("before-outage", []byte("kept"))
	require.NoError(t, pub.Publish(topic, before))

	stop()
	start := time.Now()
	err = pub.Publish(topic, message.NewMessage("during-outage", nil))
	require.Error(t, err)
	require.False(t, broker.IsPermanent(broker.KindNATS, err), "%v", err)
	t.Logf("publish during the outage failed after %s: %v", time.Since(start).Round(time.Millisecond), err)

	u, err := url.Parse(natsURL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	_, stopAgain, err := broker.StartEmbeddedNATSOn(ctx, dir, port)
	require.NoError(t, err)
	t.Cleanup(stopAgain)

	require.Eventually(t, func() bool {
		return pub.Publish(topic, message.NewMessage("after-outage", nil)) == nil
	}, 20*time.Second, 100*time.Millisecond, "publisher did not recover after the server came back")

	// The stream survived the restart with what was published before.
	sub, ch := subscribe(t, cfg, "after", topic)
	requireIntact(t, before, next(t, ch, receiveTimeout))
	closeWithin(t, "subscriber", sub, closeTimeout)
}

// TestIsPermanentClassifiesErrors checks the classification with the
// errors the clients return, including rejections no broker here can be
// made to send (a real Kafka's invalid record; RabbitMQ and Redis have no
// permanent ones). TestPublishBatchReportsEachMessagesFate provokes the
// ones the brokers can.
func TestIsPermanentClassifiesErrors(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("kafka: publish to t: cannot produce message x: %w", err) }
	tests := []struct {
		name string
		kind broker.Kind
		err  error
		want bool
	}{
		{"nil", broker.KindNATS, nil, false},
		{"invalid topic on any kind", broker.KindRedis, fmt.Errorf("x: %w", broker.ErrInvalidTopic), true},
		{"nats timeout", broker.KindNATS, fmt.Errorf("x: %w", nats.ErrTimeout), false},
		{"nats connection closed", broker.KindNATS, fmt.Errorf("x: %w", nats.ErrConnectionClosed), false},
		{"nats no stream response", broker.KindNATS, fmt.Errorf("x: %w", nats.ErrNoStreamResponse), false},
		{"nats max payload", broker.KindNATS, fmt.Errorf("x: %w", nats.ErrMaxPayload), true},
		{"nats error on another kind", broker.KindAMQP, nats.ErrMaxPayload, false},
		{"kafka message too large", broker.KindKafka, wrap(sarama.ErrMessageSizeTooLarge), true},
		{"kafka invalid message", broker.KindKafka, wrap(sarama.ErrInvalidMessage), true},
		{"kafka record over MaxMessageBytes", broker.KindKafka, wrap(sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes: 2000000 > 1000000")), true},
		{"kafka other configuration error", broker.KindKafka, wrap(sarama.ConfigurationError("Producing headers requires Kafka at least v0.11")), false},
		{"kafka leader not available", broker.KindKafka, wrap(sarama.ErrLeaderNotAvailable), false},
		{"kafka out of brokers", broker.KindKafka, wrap(sarama.ErrOutOfBrokers), false},
		{"postgres invalid data", broker.KindPostgres, fmt.Errorf("x: %w", &pgconn.PgError{Code: "22P02"}), true},
		{"postgres row too large", broker.KindPostgres, fmt.Errorf("x: %w", &pgconn.PgError{Code: "54000"}), true},
		{"postgres admin shutdown", broker.KindPostgres, fmt.Errorf("x: %w", &pgconn.PgError{Code: "57P01"}), false},
		{"context deadline", broker.KindPostgres, context.DeadlineExceeded, false},
		{"unknown error", broker.KindAMQP, errors.New("delivery not confirmed"), false},
		{"amqp nack", broker.KindAMQP, broker.ErrAMQPNack, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, broker.IsPermanent(tt.kind, tt.err))
		})
	}
}
