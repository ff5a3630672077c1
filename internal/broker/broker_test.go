package broker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/broker/kafkatest"
	"github.com/outboxd/outboxd/internal/pgtest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.IgnoreGoroutines(
		// Watermill's universal suite merges several subscribers into one
		// channel (its internal multiplier) and stops reading it once it
		// has the messages it counts; a goroutine holding one more message,
		// a redelivery that a subscriber handing on several at once had
		// already passed on, blocks on that send for good, and the one
		// waiting for it too. They are the suite's, not ours (CI saw them).
		goleak.IgnoreTopFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func2"),
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func3"),
	))
}

// transport is one broker kind the conformance suite runs against.
type transport struct {
	kind Kind
	// config addresses a broker for t alone: an embedded NATS server, a
	// kfake cluster, a fresh PostgreSQL database, or the shared
	// RabbitMQ/Redis (or a real Kafka's KAFKA_BROKERS), where topics are
	// unique per test.
	config func(testing.TB) broker.Config
}

// Kind shortens broker.Kind in tables.
type Kind = broker.Kind

func transports() []transport {
	return []transport{
		{broker.KindNATS, func(t testing.TB) broker.Config {
			return testConfig(broker.KindNATS, startNATS(t))
		}},
		{broker.KindAMQP, func(testing.TB) broker.Config {
			return testConfig(broker.KindAMQP, cmpEnv("OUTBOXD_TEST_AMQP_URL", broker.AMQPURLDefault))
		}},
		{broker.KindRedis, func(testing.TB) broker.Config {
			return testConfig(broker.KindRedis, cmpEnv("OUTBOXD_TEST_REDIS_URL", broker.RedisURLDefault))
		}},
		{broker.KindPostgres, func(t testing.TB) broker.Config {
			return testConfig(broker.KindPostgres, pgtest.NewDatabase(t))
		}},
		{broker.KindKafka, func(t testing.TB) broker.Config {
			return testConfig(broker.KindKafka, kafkatest.Brokers(t))
		}},
	}
}

func testConfig(kind Kind, url string) broker.Config {
	return broker.Config{Kind: kind, URL: url, Logger: testLogger()}
}

func cmpEnv(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// testLogger discards the transports' logs unless OUTBOXD_TEST_LOG is set:
// they log from goroutines that may outlive a test, where t.Log panics.
func testLogger() *slog.Logger {
	if os.Getenv("OUTBOXD_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startNATS runs an embedded JetStream server for t alone.
func startNATS(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url, stop, err := broker.StartEmbeddedNATS(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(stop)
	return url
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// uniqueTopic is a topic no other test uses, removed from the shared brokers
// when t ends along with the groups' queues.
func uniqueTopic(t testing.TB, cfg broker.Config, groups ...string) string {
	t.Helper()
	topic := "conf." + randomHex(4)
	t.Cleanup(func() { dropTopic(t, cfg, topic, groups) })
	return topic
}

func dropTopic(t testing.TB, cfg broker.Config, topic string, groups []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch cfg.Kind {
	case broker.KindAMQP:
		conn, err := amqp091.Dial(cfg.URL)
		if err != nil {
			t.Logf("clean up RabbitMQ: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Logf("clean up RabbitMQ: %v", err)
			return
		}
		defer ch.Close()
		for _, g := range groups {
			_, _ = ch.QueueDelete(topic+"_"+g, false, false, false)
		}
		_ = ch.ExchangeDelete(topic, false, false)
	case broker.KindRedis:
		opts, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return
		}
		client := redis.NewClient(opts)
		defer client.Close()
		_ = client.Del(ctx, topic).Err()
	}
}

// sample is a message as the relay publishes it: every metadata field
// outboxd uses, and a payload that is not text.
func sample(seq int, key string) *message.Message {
	id := uuid.Must(uuid.NewV7()).String()
	msg := message.NewMessage(id, fmt.Appendf(nil, "seq=%d\x00\xff\n", seq))
	msg.Metadata = message.Metadata{
		"message_id":     id,
		"key":            key,
		"enqueued_at":    time.Now().UTC().Format(time.RFC3339Nano),
		"correlation_id": "corr-" + randomHex(8),
		"traceparent":    "00-" + randomHex(16) + "-" + randomHex(8) + "-01",
		"seq":            fmt.Sprint(seq),
	}
	return msg
}

// requireIntact fails unless got carries want's UUID, payload and every
// metadata field. Transports may add fields of their own (RabbitMQ marks
// redeliveries).
func requireIntact(t *testing.T, want, got *message.Message) {
	t.Helper()
	require.Equal(t, want.UUID, got.UUID)
	require.Equal(t, want.Payload, got.Payload, "payload of %s", want.UUID)
	for k, v := range want.Metadata {
		require.Equal(t, v, got.Metadata.Get(k), "metadata %q of %s", k, want.UUID)
	}
}

// next returns the next message of ch, failing t when none comes within d or
// ch is closed.
func next(t *testing.T, ch <-chan *message.Message, d time.Duration) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-ch:
		require.True(t, ok, "subscription closed")
		return msg
	case <-time.After(d):
		require.FailNow(t, "no message", "none within %s", d)
		return nil
	}
}

// closeWithin closes c and fails t unless Close returns within d.
func closeWithin(t *testing.T, what string, c io.Closer, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		require.NoError(t, err, "close %s", what)
		t.Logf("closed %s in %s", what, time.Since(start).Round(time.Millisecond))
	case <-time.After(d):
		require.FailNow(t, "close hangs", "%s did not close within %s", what, d)
	}
}

// requireClosed fails t unless ch is closed within d; messages still in it
// are nacked.
func requireClosed(t *testing.T, ch <-chan *message.Message, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case msg, ok := <-ch:
			if !ok {
				return
			}
			msg.Nack()
		case <-deadline:
			require.FailNow(t, "subscription open", "channel not closed within %s of Close", d)
		}
	}
}
