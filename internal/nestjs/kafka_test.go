package nestjs_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/outboxd/outboxd/internal/nestjs"
)

// kafkaCluster starts an in-process Kafka (kfake) for t alone with topics
// seeded, and returns its brokers.
func kafkaCluster(t *testing.T, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// TestNestJSOverKafka: over Kafka, a signup reaches a NestJS
// @EventPattern('user_created') handler subscribed to topic user_created,
// with the payload as the message value.
func TestNestJSOverKafka(t *testing.T) {
	t.Parallel()
	url := kafkaCluster(t, "user_created")
	s := startStack(t, embeddedNATS(t), nestjs.Config{Transport: nestjs.TransportKafka, URL: url})
	consumer := startNode(t, "consumer", "NESTJS_BROKER=kafka", "NESTJS_URL="+url)

	u := s.signup(t, "di@example.com", "Di")
	waitForEvent(t, consumer, u)
}

// TestKafkaCollisionFailsAtStart: on a cluster that has user.created, the
// pattern user_created is refused when the emitter connects, with the
// mapping to use instead.
func TestKafkaCollisionFailsAtStart(t *testing.T) {
	t.Parallel()
	em, err := nestjs.NewEmitter(nestjs.Config{Transport: nestjs.TransportKafka, URL: kafkaCluster(t, "user.created")})
	require.NoError(t, err)
	err = em.AddHandlers(context.Background(), nil)
	require.EqualError(t, err, `nestjs emitter over kafka: nestjs: Kafka refuses topic "user_created" for user.created because it collides with topic "user.created" ('.' and '_' are the same to Kafka): map user.created=user-created instead and listen with @EventPattern('user-created')`)
	require.NotContains(t, err.Error(), "\n")
	require.NoError(t, em.Close())

	_, err = nestjs.NewEmitter(nestjs.Config{Transport: nestjs.TransportKafka, KafkaTopicsInUse: []string{"user.created"}})
	require.ErrorContains(t, err, "map user.created=user-created instead", "topics to come are checked before connecting")
}
