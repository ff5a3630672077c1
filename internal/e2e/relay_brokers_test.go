package e2e_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/broker/kafkatest"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// TestRelayDeliversEveryMessageThroughEachBroker enqueues 10,000 messages
// and checks that, through the relay publishing in pipelined runs
// (relay.BatchPublisher) and each broker, every one arrives at a subscriber
// exactly once after dedup by message id, none missing, and each key's
// first deliveries in enqueue order. Kafka is an in-process kfake cluster
// unless KAFKA_BROKERS names a real one.
func TestRelayDeliversEveryMessageThroughEachBroker(t *testing.T) {
	t.Parallel()
	const (
		total = 10_000
		keys  = 50
	)
	kinds := []broker.Kind{broker.KindNATS, broker.KindAMQP, broker.KindRedis, broker.KindKafka, broker.KindPostgres}
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			dsn := pgtest.NewDatabase(t)
			pool := pgtest.Connect(t, dsn)
			bcfg := brokerUnderTest(t, kind, dsn)
			if kind == broker.KindKafka {
				bcfg.URL = kafkatest.Brokers(t)
			}
			topic := randomName("e2e.relay")

			// Subscribe first: a RabbitMQ group's queue exists from its
			// first Subscribe on.
			sub, err := broker.NewSubscriber(ctx, bcfg, randomName("g"))
			require.NoError(t, err)
			defer sub.Close()
			deliveries, err := sub.Subscribe(ctx, topic)
			require.NoError(t, err)

			for batch := 0; batch < total/1000; batch++ {
				msgs := make([]outbox.Message, 1000)
				for i := range msgs {
					seq := batch*1000 + i
					payload := binary.BigEndian.AppendUint64(nil, uint64(seq))
					msgs[i] = outbox.Message{Topic: topic, Key: fmt.Sprintf("k%02d", seq%keys), Payload: payload}
				}
				tx, err := pool.Begin(ctx)
				require.NoError(t, err)
				require.NoError(t, outbox.EnqueueTx(ctx, tx, msgs...))
				require.NoError(t, tx.Commit(ctx))
			}

			pub, err := broker.NewPublisher(ctx, bcfg)
			require.NoError(t, err)
			defer pub.Close()
			_, pipelined := pub.(relay.BatchPublisher)
			require.True(t, pipelined, "the relay publishes to %s in runs", kind)
			r, err := relay.New(pool, pub, relay.Config{
				IsPermanent: func(err error) bool { return broker.IsPermanent(kind, err) },
			})
			require.NoError(t, err)
			relayCtx, stopRelay := context.WithCancel(ctx)
			relayDone := make(chan error, 1)
			go func() { relayDone <- r.Run(relayCtx) }()
			defer func() {
				stopRelay()
				require.NoError(t, <-relayDone)
			}()

			seen := make(map[string]bool, total)
			lastSeq := make(map[string]int64, keys)
			duplicates := 0
			for len(seen) < total {
				var msg *message.Message
				select {
				case msg = <-deliveries:
				case <-ctx.Done():
					t.Fatalf("%s: %d of %d messages arrived before the deadline", kind, len(seen), total)
				}
				id := msg.Metadata.Get(outbox.MetadataMessageID)
				require.Equal(t, msg.UUID, id, "the Watermill UUID is the outbox message id")
				if seen[id] {
					duplicates++
					msg.Ack()
					continue
				}
				seen[id] = true
				seq := int64(binary.BigEndian.Uint64(msg.Payload))
				key := msg.Metadata.Get(outbox.MetadataKey)
				require.Equal(t, fmt.Sprintf("k%02d", seq%keys), key)
				if last, ok := lastSeq[key]; ok {
					require.Greater(t, seq, last, "key %s: message %d arrived after %d", key, seq, last)
				}
				lastSeq[key] = seq
				msg.Ack()
			}
			require.Len(t, seen, total)
			t.Logf("%s: %d messages, %d duplicate deliveries", kind, total, duplicates)

			require.Eventually(t, func() bool {
				var n int
				require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n))
				return n == 0
			}, 30*time.Second, 50*time.Millisecond, "published rows are deleted")
		})
	}
}
