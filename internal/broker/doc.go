// Package broker builds the Watermill publisher the relay publishes with and
// the subscribers the worker consumes with, for the broker named by BROKER
// and BROKER_URL: NATS JetStream (the default), RabbitMQ, Redis Streams,
// Kafka or PostgreSQL.
//
// Whatever the broker, a message arrives with its Watermill UUID, its payload
// byte for byte and all its metadata (message_id, key, enqueued_at,
// correlation_id, traceparent, ...); publishing is confirmed by the broker
// before Publish returns; every consumer group receives every message of a
// topic, the members of a group share them, and a group keeps its place
// across restarts (at-least-once: ack to move on, nack to get it again).
//
// Usage:
//
//	cfg := broker.Config{Kind: kind, URL: os.Getenv("BROKER_URL"), Logger: logger}
//	pub, err := broker.NewPublisher(ctx, cfg)             // relay
//	sub, err := broker.NewSubscriber(ctx, cfg, "email")   // worker, one per handler
//	defer pub.Close()
//
// # Topics on each broker
//
// A topic is dot-separated words (user.created); each broker gets it in its
// natural form:
//
//   - NATS JetStream: the subject is the topic. Each topic has its own file
//     stream, created if missing and named after the topic with dots turned
//     to underscores (stream user_created holds subject user.created), kept
//     7 days. Every message carries Nats-Msg-Id = its UUID, so JetStream's
//     2-minute duplicate window drops a relay's re-send after a crash. A
//     group is a durable push consumer named after the group with a queue
//     group of the same name, acked explicitly; a nack redelivers at once,
//     a message unanswered for Config.AckTimeout is redelivered.
//   - RabbitMQ: a durable fanout exchange named after the topic, and per
//     group a durable queue topic_group (user.created_email) bound to it;
//     persistent messages, publisher confirms. Each Subscribe consumes on a
//     channel of its own, prefetch max(16, Config.InFlight), acks each
//     message on its own and consumes again, dialling again if need be,
//     when the channel is lost. A nack requeues. A group's queue exists
//     from its first Subscribe (or SubscribeInitialize) on: messages
//     published before it are not in it.
//   - Redis Streams: the stream key is the topic, the consumer group is the
//     group (created at the stream's start), each subscriber a new consumer
//     in it, in watermill-redisstream's format. Each Subscribe reads with
//     XREADGROUP up to Config.InFlight messages ahead of their answers and
//     acks each with its own XACK; a nack hands the message on again.
//     Messages a departed consumer left unacked are claimed (XCLAIM) by the
//     others after Config.AckTimeout; those in hand when a subscription
//     ends are given back, to the next claim of any member rather than
//     after Config.AckTimeout. Streams are not trimmed.
//   - Kafka: the Kafka topic is the topic, the record key is the metadata
//     key, so one key's records share a partition, and the consumer group is
//     the group (starting at the oldest offset). The producer is idempotent
//     and waits for all in-sync replicas.
//   - PostgreSQL (watermill-sql's tables): table watermill_<topic> holds the
//     messages (payload as BYTEA) and watermill_offsets_<topic> each group's
//     position; both are created on first use. A publish is one transaction
//     on its own pool, one INSERT per topic, committed before it returns: it
//     needs no transaction of the caller. Topics are limited to 45 bytes
//     (table name length). Rows are never deleted. Each Subscribe reads a
//     batch of max(100, Config.InFlight) rows in one transaction, with
//     watermill-sql's queries, and hands them on in offset order, up to
//     Config.InFlight unanswered at once; a nack, or no answer within
//     Config.AckTimeout, hands the message on again. The group's offset
//     moves once the whole batch is acked, or, when the subscription ends,
//     past the prefix acked in offset order, the rest coming again at once.
//     A subscriber reads only rows older than every running transaction of
//     the whole cluster (pg_snapshot_xmin), and holds a transaction with an
//     id while its batch is being handled (a FOR UPDATE on its group's
//     offset row, so the members of a group take turns): one slow handler
//     delays every other group, and the relay's own horizon if the outbox
//     lives on the same cluster. Give this broker its own PostgreSQL when
//     handlers are slow.
//
// # Order
//
// A group with one member receives each key's messages in publish order on
// every broker, as long as none is nacked or times out: a redelivered
// message comes after later ones on NATS, and after a departed member's
// messages are claimed or requeued on Redis and RabbitMQ. With several
// members only Kafka (one partition per key) and PostgreSQL (a group reads
// under a row lock, one member at a time) keep each key's order.
//
// # Pipelined publishing
//
// The publisher is also a relay.BatchPublisher: PublishBatch sends a run of
// messages, of one topic or several, all at once and reports each one's
// fate, so that the relay keeps a whole run in flight rather than one
// message per round trip. On NATS the run's publishes are asynchronous and
// their acknowledgements awaited together; on RabbitMQ they are
// outstanding together on one confirm-mode channel; on Kafka they are one
// sarama SendMessages; on Redis one pipeline of XADDs; on PostgreSQL one
// transaction, which stores the whole run or, when PostgreSQL refuses a row
// for good, is tried again message by message so that only that one fails.
// A Kafka batch over a topic's max.message.bytes is likewise tried again
// record by record. Publish sends its messages one at a time (on
// PostgreSQL in one transaction), as its contract wants nothing stored
// after a failure.
//
// # Failures
//
// IsPermanent tells a message the broker will never take (too large,
// invalid) from a failure worth retrying (broker down, timeout). Brokers
// that go away are reconnected to in the background; Publish fails in the
// meantime and succeeds again once they are back. A subscriber's Close
// gives the messages in hand back to the group; Watermill's transports send
// an ack after Ack returns, so a message acked just before Close may come
// once more (at-least-once).
package broker
