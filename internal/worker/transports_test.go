package worker_test

import (
	"cmp"
	"context"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/broker/kafkatest"
	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/worker"
)

// TestConcurrentBatchesOnRealTransports drains a backlog of many messages
// over a few keys through real brokers: NATS JetStream, RabbitMQ, Redis
// Streams and PostgreSQL (watermill-sql's tables), whose subscriptions hand
// on Config.InFlight messages before the first is answered, and Kafka
// (kfake, or KAFKA_BROKERS), whose partitions are handed over at once, one
// message each. The audit handler must work on several messages
// at once, so that they share transactions (fewer batches than messages;
// one message at a time makes a batch each), and still write each key's
// records in publish order.
func TestConcurrentBatchesOnRealTransports(t *testing.T) {
	t.Parallel()
	discard := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name   string
		broker func(t *testing.T) broker.Config
	}{
		{"nats", startNATS},
		{"kafka", func(t *testing.T) broker.Config {
			return broker.Config{Kind: broker.KindKafka, URL: kafkatest.Brokers(t), Logger: discard}
		}},
		{"amqp", func(t *testing.T) broker.Config {
			// The shared RabbitMQ: the group's queue on user.created, emptied
			// of what a run before left, must exist before the test publishes.
			bcfg := broker.Config{Kind: broker.KindAMQP, URL: os.Getenv("OUTBOXD_TEST_AMQP_URL"), Logger: discard}.WithDefaults()
			queue := event.TopicUserCreated + "_" + worker.Group(worker.HandlerAudit)
			deleteQueue := func() {
				conn, err := amqp091.Dial(bcfg.URL)
				require.NoError(t, err)
				defer conn.Close()
				ch, err := conn.Channel()
				require.NoError(t, err)
				_, err = ch.QueueDelete(queue, false, false, false)
				require.NoError(t, err)
			}
			deleteQueue()
			t.Cleanup(deleteQueue)
			sub, err := broker.NewSubscriber(context.Background(), bcfg, worker.Group(worker.HandlerAudit))
			require.NoError(t, err)
			defer sub.Close()
			require.NoError(t, sub.(message.SubscribeInitializer).SubscribeInitialize(event.TopicUserCreated))
			return bcfg
		}},
		{"redis", func(t *testing.T) broker.Config {
			// The shared Redis, where the stream is the fixed topic
			// user.created: a database of the test's own, held with a lock
			// key against another run at the same time, emptied of what a run
			// before left.
			ctx := context.Background()
			u, err := url.Parse(cmp.Or(os.Getenv("OUTBOXD_TEST_REDIS_URL"), broker.RedisURLDefault))
			require.NoError(t, err)
			const lock = "outboxd-test-lock"
			for db := 1; db < 16; db++ {
				u.Path = "/" + strconv.Itoa(db)
				opts, err := redis.ParseURL(u.String())
				require.NoError(t, err)
				client := redis.NewClient(opts)
				held, err := client.SetNX(ctx, lock, t.Name(), 10*time.Minute).Result()
				if err != nil || !held {
					_ = client.Close()
					continue
				}
				empty := func() {
					require.NoError(t, client.Del(ctx, event.TopicUserCreated).Err())
				}
				empty()
				t.Cleanup(func() {
					empty()
					_ = client.Del(ctx, lock).Err()
					_ = client.Close()
				})
				return broker.Config{Kind: broker.KindRedis, URL: u.String(), Logger: discard}
			}
			require.FailNow(t, "no free Redis database", "every one of 1 to 15 holds %s", lock)
			return broker.Config{}
		}},
		{"postgres", func(t *testing.T) broker.Config {
			// A database of the test's own, beside the worker's, as
			// BROKER=postgres is best given.
			return broker.Config{Kind: broker.KindPostgres, URL: pgtest.NewEmptyDatabase(t), Logger: discard}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bcfg := tc.broker(t)
			bcfg.InFlight = worker.ConcurrencyDefault // as outboxd worker sets it
			cfg := fastRetries
			cfg.Handlers = []string{worker.HandlerAudit}
			b := setup(t, setupOpts{cfg: cfg, subscribe: func(ctx context.Context, group string) (message.Subscriber, error) {
				return broker.NewSubscriber(ctx, bcfg, group)
			}})
			pub := publisher(t, bcfg)

			const keys, perKey = 8, 50
			users := make([]event.UserCreated, keys)
			for i := range users {
				users[i] = newEvent("User")
			}
			want := map[uuid.UUID][]uuid.UUID{} // user → message ids in publish order
			for range perKey {
				for _, ev := range users {
					id := uuid.New()
					want[ev.UserID] = append(want[ev.UserID], id)
					require.NoError(t, pub.Publish(event.TopicUserCreated, newMessage(t, id, ev, "")))
				}
			}
			b.start(t)
			waitCount(t, b.pool, keys*perKey, 60*time.Second, `SELECT count(*) FROM audit_log`)

			requireAuditOrder(t, b.pool, want)
			batches := metric(t, b.reg, "outboxd_worker_batch_size", worker.HandlerAudit)
			t.Logf("%d messages in %.0f batches", keys*perKey, batches)
			require.Less(t, batches, float64(keys*perKey), "several messages at once, written together")
		})
	}
}
