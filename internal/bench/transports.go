package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/outbox"
)

// The raw loops' windows: each is the most its client keeps in flight
// before it waits for the oldest acknowledgement.
const (
	// rawNATSWindow is jetstream.WithPublishAsyncMaxPending of the raw
	// PublishAsync loop.
	rawNATSWindow = 512
	// rawAMQPWindow is the publisher confirms the raw amqp091 loop keeps
	// outstanding.
	rawAMQPWindow = 1024
	// rawRedisRun is the XADDs of one pipeline of the raw Redis loop.
	rawRedisRun = 500
)

// kafkaPartitions is the partition count of the relay benchmark's Kafka
// topic, as kafkatest gives the broker tests.
const kafkaPartitions = 4

// destination is where one transport of the relay benchmark publishes: the
// same topic for the relay's publisher and for the raw client loop, emptied
// before each, its messages counted after each.
type destination interface {
	// config addresses the broker for the relay's publisher.
	config() broker.Config
	// reset empties the destination before a drain or a raw loop.
	reset(ctx context.Context) error
	// stored counts the messages the destination holds since its reset.
	stored(ctx context.Context) (int64, error)
	// raw publishes msgs with the transport's client at its fastest, with
	// each message's fate known (stored, acknowledged), and returns the time
	// taken from the first publish to the last acknowledgement. Messages
	// are turned into the client's own type before the clock starts.
	raw(ctx context.Context, msgs []*message.Message, count *atomic.Int64) (time.Duration, error)
	// close removes what the run created on a shared broker.
	close()
}

// rawRow is an outbox row kept for the raw loops, compactly: they turn it
// into a Watermill message as the relay does only when they run.
type rawRow struct {
	id, key, enqueued string
	payload, metadata []byte
}

// message is r as the relay publishes it: the row's metadata with the
// message id, the key and the enqueue time added.
func (r rawRow) message() (*message.Message, error) {
	md := make(message.Metadata, 5)
	if err := json.Unmarshal(r.metadata, &md); err != nil {
		return nil, fmt.Errorf("row %s: decode metadata: %w", r.id, err)
	}
	md[outbox.MetadataMessageID] = r.id
	md[outbox.MetadataKey] = r.key
	md[outbox.MetadataEnqueuedAt] = r.enqueued
	msg := message.NewMessage(r.id, r.payload)
	msg.Metadata = md
	return msg, nil
}

// backlogRows fills the outbox with n rows and reads them back for the
// raw loops, emptying the outbox after.
func (e *env) backlogRows(ctx context.Context, n int) ([]rawRow, error) {
	if err := e.fill(ctx, n); err != nil {
		return nil, err
	}
	rows, err := e.pool.Query(ctx, `SELECT message_id::text, key, payload, metadata::text, created_at FROM outbox ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read backlog: %w", err)
	}
	defer rows.Close()
	out := make([]rawRow, 0, n)
	for rows.Next() {
		var (
			r        rawRow
			md       string
			enqueued time.Time
		)
		if err := rows.Scan(&r.id, &r.key, &r.payload, &md, &enqueued); err != nil {
			return nil, fmt.Errorf("read backlog: %w", err)
		}
		r.metadata = []byte(md)
		r.enqueued = enqueued.UTC().Format(time.RFC3339Nano)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read backlog: %w", err)
	}
	if _, err := e.pool.Exec(ctx, `TRUNCATE outbox`); err != nil {
		return nil, fmt.Errorf("read backlog: %w", err)
	}
	return out, nil
}

// rawMessages turns rows into messages as the relay publishes them.
func rawMessages(rows []rawRow) ([]*message.Message, error) {
	msgs := make([]*message.Message, len(rows))
	for i, r := range rows {
		m, err := r.message()
		if err != nil {
			return nil, err
		}
		msgs[i] = m
	}
	return msgs, nil
}

// marshalAll marshals every message with f before a raw loop's clock
// starts.
func marshalAll[T any](msgs []*message.Message, f func(*message.Message) (T, error)) ([]T, error) {
	out := make([]T, len(msgs))
	for i, m := range msgs {
		v, err := f(m)
		if err != nil {
			return nil, fmt.Errorf("marshal message %s: %w", m.UUID, err)
		}
		out[i] = v
	}
	return out, nil
}

// newDestination prepares kind's destination for topic.
func (e *env) newDestination(ctx context.Context, kind broker.Kind, topic string) (destination, error) {
	switch kind {
	case broker.KindNATS:
		return e.natsDestination(ctx, topic)
	case broker.KindAMQP:
		return e.amqpDestination(topic)
	case broker.KindRedis:
		return e.redisDestination(ctx, topic)
	case broker.KindKafka:
		return e.kafkaDestination(ctx, topic)
	case broker.KindPostgres:
		return &postgresDestination{e: e, topic: topic}, nil
	}
	return nil, fmt.Errorf("no destination for broker %q", kind)
}

// NATS JetStream: the stream the relay's publisher creates for the topic.

type natsDestination struct {
	e     *env
	topic string
	nc    *nats.Conn
	js    jetstream.JetStream
}

func (e *env) natsDestination(ctx context.Context, topic string) (*natsDestination, error) {
	nc, err := nats.Connect(e.natsURL, nats.Name("outboxd bench raw loop"))
	if err != nil {
		return nil, fmt.Errorf("connect NATS: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(rawNATSWindow))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	d := &natsDestination{e: e, topic: topic, nc: nc, js: js}
	// The relay's publisher creates the stream on first use: a Publish of
	// nothing does it here, as it would, so that reset can purge it before
	// the first drain.
	pub, err := broker.NewPublisher(ctx, d.config())
	if err == nil {
		err = pub.Publish(topic)
		_ = pub.Close()
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return d, nil
}

func (d *natsDestination) config() broker.Config {
	return broker.Config{Kind: broker.KindNATS, URL: d.e.natsURL, Logger: d.e.cfg.Logger}
}

func (d *natsDestination) stream(ctx context.Context) (jetstream.Stream, error) {
	name, err := d.js.StreamNameBySubject(ctx, d.topic)
	if err != nil {
		return nil, fmt.Errorf("find the stream of %s: %w", d.topic, err)
	}
	return d.js.Stream(ctx, name)
}

func (d *natsDestination) reset(ctx context.Context) error {
	s, err := d.stream(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.Purge(ctx)
}

func (d *natsDestination) stored(ctx context.Context) (int64, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return int64(info.State.Msgs), nil
}

// raw publishes with PublishMsgAsync, rawNATSWindow unacknowledged at
// most, and awaits PublishAsyncComplete. Each message has the relay's
// headers (watermill-nats' marshaler) and its Nats-Msg-Id.
func (d *natsDestination) raw(ctx context.Context, msgs []*message.Message, count *atomic.Int64) (time.Duration, error) {
	marshaler := &wmnats.NATSMarshaler{}
	out, err := marshalAll(msgs, func(m *message.Message) (*nats.Msg, error) {
		nm, err := marshaler.Marshal(d.topic, m)
		if err == nil {
			nm.Header.Set(jetstream.MsgIDHeader, m.UUID)
		}
		return nm, err
	})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for _, m := range out {
		// Blocks while rawNATSWindow publishes await their acks.
		if _, err := d.js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			return 0, fmt.Errorf("raw publish: %w", err)
		}
		count.Add(1)
	}
	select {
	case <-d.js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(time.Minute):
		return 0, errors.New("raw publish: acks missing after a minute")
	}
	return time.Since(start), nil
}

func (d *natsDestination) close() {
	if d.e.cfg.BrokerURL != "" {
		// A NATS of the user's: remove the run's stream.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if name, err := d.js.StreamNameBySubject(ctx, d.topic); err == nil {
			_ = d.js.DeleteStream(ctx, name)
		}
	}
	d.nc.Close()
}

// RabbitMQ: the topic's fanout exchange, declared as the relay's publisher
// declares it, with a durable queue of the run's bound to it, so that every
// confirm means a persistent message stored in a queue.

type amqpDestination struct {
	e        *env
	topic    string
	wm       wmamqp.Config
	exchange string
	queue    string
	conn     *amqp091.Connection
	ch       *amqp091.Channel
}

func (e *env) amqpDestination(topic string) (_ *amqpDestination, err error) {
	d := &amqpDestination{e: e, topic: topic, wm: wmamqp.NewDurablePubSubConfig(e.cfg.AMQPURL, nil)}
	d.exchange = d.wm.Exchange.GenerateName(topic)
	d.queue = strings.ReplaceAll(topic, ".", "_")
	if d.conn, err = amqp091.Dial(e.cfg.AMQPURL); err != nil {
		// amqp091's dial errors name the host, never the URL's password.
		return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	defer func() {
		if err != nil {
			_ = d.conn.Close()
		}
	}()
	if d.ch, err = d.conn.Channel(); err != nil {
		return nil, fmt.Errorf("RabbitMQ channel: %w", err)
	}
	if err := d.wm.TopologyBuilder.ExchangeDeclare(d.ch, d.exchange, d.wm); err != nil {
		return nil, fmt.Errorf("declare exchange %s: %w", d.exchange, err)
	}
	if _, err := d.ch.QueueDeclare(d.queue, true, false, false, false, nil); err != nil {
		return nil, fmt.Errorf("declare queue %s: %w", d.queue, err)
	}
	if err := d.ch.QueueBind(d.queue, d.wm.QueueBind.GenerateRoutingKey(topic), d.exchange, false, nil); err != nil {
		return nil, fmt.Errorf("bind queue %s: %w", d.queue, err)
	}
	return d, nil
}

func (d *amqpDestination) config() broker.Config {
	return broker.Config{Kind: broker.KindAMQP, URL: d.e.cfg.AMQPURL, Logger: d.e.cfg.Logger}
}

func (d *amqpDestination) reset(context.Context) error {
	if _, err := d.ch.QueuePurge(d.queue, false); err != nil {
		return fmt.Errorf("purge queue %s: %w", d.queue, err)
	}
	return nil
}

func (d *amqpDestination) stored(context.Context) (int64, error) {
	q, err := d.ch.QueueDeclarePassive(d.queue, true, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("queue %s: %w", d.queue, err)
	}
	return int64(q.Messages), nil
}

// raw publishes on one channel in confirm mode with
// PublishWithDeferredConfirmWithContext, rawAMQPWindow confirms
// outstanding at most (the oldest awaited when the window is full), and
// awaits every confirm. Each message is watermill-amqp's marshaling, as
// the relay's publisher sends it.
func (d *amqpDestination) raw(ctx context.Context, msgs []*message.Message, count *atomic.Int64) (time.Duration, error) {
	out, err := marshalAll(msgs, d.wm.Marshaler.Marshal)
	if err != nil {
		return 0, err
	}
	conn, err := amqp091.Dial(d.e.cfg.AMQPURL)
	if err != nil {
		return 0, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("RabbitMQ channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		return 0, fmt.Errorf("confirm mode: %w", err)
	}
	routingKey := d.wm.Publish.GenerateRoutingKey(d.topic)
	window := make([]*amqp091.DeferredConfirmation, rawAMQPWindow)
	confirmed := func(dc *amqp091.DeferredConfirmation) error {
		acked, err := dc.WaitContext(ctx)
		switch {
		case err != nil:
			return fmt.Errorf("raw publish: %w", err)
		case !acked:
			return errors.New("raw publish: RabbitMQ nacked a message")
		}
		return nil
	}
	start := time.Now()
	for i, p := range out {
		slot := i % rawAMQPWindow
		if dc := window[slot]; dc != nil {
			if err := confirmed(dc); err != nil {
				return 0, err
			}
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, d.exchange, routingKey, false, false, p)
		if err != nil {
			return 0, fmt.Errorf("raw publish: %w", err)
		}
		window[slot] = dc
		count.Add(1)
	}
	// The oldest first: the slot after the last one written.
	for i := range rawAMQPWindow {
		if dc := window[(len(out)+i)%rawAMQPWindow]; dc != nil {
			if err := confirmed(dc); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start), nil
}

func (d *amqpDestination) close() {
	_, _ = d.ch.QueueDelete(d.queue, false, false, false)
	_ = d.ch.ExchangeDelete(d.exchange, false, false)
	_ = d.conn.Close()
}

// Redis Streams: the topic's stream.

type redisDestination struct {
	e      *env
	topic  string
	client *redis.Client
}

func (e *env) redisDestination(ctx context.Context, topic string) (*redisDestination, error) {
	opts, err := redis.ParseURL(e.cfg.RedisURL)
	if err != nil {
		// go-redis' parse errors may quote the URL, password included.
		return nil, errors.New("parse the Redis URL: not a valid redis:// URL")
	}
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("connect to Redis at %s: %w", opts.Addr, err)
	}
	return &redisDestination{e: e, topic: topic, client: client}, nil
}

func (d *redisDestination) config() broker.Config {
	return broker.Config{Kind: broker.KindRedis, URL: d.e.cfg.RedisURL, Logger: d.e.cfg.Logger}
}

func (d *redisDestination) reset(ctx context.Context) error {
	if err := d.client.Del(ctx, d.topic).Err(); err != nil {
		return fmt.Errorf("delete stream %s: %w", d.topic, err)
	}
	return nil
}

func (d *redisDestination) stored(ctx context.Context) (int64, error) {
	n, err := d.client.XLen(ctx, d.topic).Result()
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", d.topic, err)
	}
	return n, nil
}

// raw sends XADDs in pipelines of rawRedisRun, each command's answer
// checked, with the fields watermill-redisstream's marshaller writes, as
// the relay's publisher sends them.
func (d *redisDestination) raw(ctx context.Context, msgs []*message.Message, count *atomic.Int64) (time.Duration, error) {
	marshaller := redisstream.DefaultMarshallerUnmarshaller{}
	out, err := marshalAll(msgs, func(m *message.Message) (map[string]any, error) { return marshaller.Marshal(d.topic, m) })
	if err != nil {
		return 0, err
	}
	cmds := make([]*redis.StringCmd, 0, rawRedisRun)
	start := time.Now()
	for len(out) > 0 {
		run := out[:min(rawRedisRun, len(out))]
		out = out[len(run):]
		pipe := d.client.Pipeline()
		cmds = cmds[:0]
		for _, values := range run {
			cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: d.topic, Values: values}))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, fmt.Errorf("raw XADD: %w", err)
		}
		for _, c := range cmds {
			if err := c.Err(); err != nil {
				return 0, fmt.Errorf("raw XADD: %w", err)
			}
		}
		count.Add(int64(len(run)))
	}
	return time.Since(start), nil
}

func (d *redisDestination) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = d.client.Del(ctx, d.topic).Err()
	_ = d.client.Close()
}

// Kafka: the topic, of kafkaPartitions partitions, on an in-process kfake
// cluster or the cluster of Config.KafkaBrokers.

type kafkaDestination struct {
	e       *env
	topic   string
	brokers []string
	cluster *kfake.Cluster
	admin   sarama.ClusterAdmin
	client  sarama.Client
	// base is the sum of the partitions' offsets at the last reset.
	base int64
}

func (e *env) kafkaDestination(ctx context.Context, topic string) (_ *kafkaDestination, err error) {
	d := &kafkaDestination{e: e, topic: topic}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	list := e.cfg.KafkaBrokers
	if list == "" {
		d.cluster, err = kfake.NewCluster(kfake.NumBrokers(3), kfake.AllowAutoTopicCreation(),
			kfake.DefaultNumPartitions(kafkaPartitions))
		if err != nil {
			return nil, fmt.Errorf("start kfake: %w", err)
		}
		list = strings.Join(d.cluster.ListenAddrs(), ",")
	}
	for b := range strings.SplitSeq(list, ",") {
		if b = strings.TrimSpace(b); b != "" {
			d.brokers = append(d.brokers, b)
		}
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_4_0_0 // a replication factor of -1, the cluster's default
	sc.ClientID = "outboxd-bench"
	if d.admin, err = sarama.NewClusterAdmin(d.brokers, sc); err != nil {
		return nil, fmt.Errorf("connect to Kafka: %w", err)
	}
	err = d.admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: kafkaPartitions, ReplicationFactor: -1}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return nil, fmt.Errorf("create topic %s: %w", topic, err)
	}
	if d.client, err = sarama.NewClient(d.brokers, sc); err != nil {
		return nil, fmt.Errorf("connect to Kafka: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := d.client.RefreshMetadata(topic)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("topic %s: %w", topic, err)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	return d, nil
}

func (d *kafkaDestination) config() broker.Config {
	return broker.Config{Kind: broker.KindKafka, URL: strings.Join(d.brokers, ","), Logger: d.e.cfg.Logger}
}

func (d *kafkaDestination) offsets() (int64, error) {
	parts, err := d.client.Partitions(d.topic)
	if err != nil {
		return 0, fmt.Errorf("topic %s: %w", d.topic, err)
	}
	var sum int64
	for _, p := range parts {
		o, err := d.client.GetOffset(d.topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, fmt.Errorf("topic %s partition %d: %w", d.topic, p, err)
		}
		sum += o
	}
	return sum, nil
}

// reset cannot empty a topic: it notes where the topic is, and stored
// counts from there.
func (d *kafkaDestination) reset(context.Context) error {
	o, err := d.offsets()
	d.base = o
	return err
}

func (d *kafkaDestination) stored(context.Context) (int64, error) {
	o, err := d.offsets()
	return o - d.base, err
}

// kafkaMarshaler is the relay's: watermill-kafka's default marshaling with
// the outbox key as the record key.
var kafkaMarshaler = kafka.NewWithPartitioningMarshaler(func(_ string, msg *message.Message) (string, error) {
	return msg.Metadata.Get(outbox.MetadataKey), nil
})

// raw sends every record through a sarama AsyncProducer configured as the
// relay's publisher (idempotent, acks from all in-sync replicas, one
// request in flight per broker, as idempotence requires) and waits for
// each one's success.
func (d *kafkaDestination) raw(ctx context.Context, msgs []*message.Message, count *atomic.Int64) (time.Duration, error) {
	out, err := marshalAll(msgs, func(m *message.Message) (*sarama.ProducerMessage, error) {
		return kafkaMarshaler.Marshal(d.topic, m)
	})
	if err != nil {
		return 0, err
	}
	sc := kafka.DefaultSaramaSyncPublisherConfig()
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Return.Errors = true
	sc.ClientID = "outboxd-bench-raw"
	producer, err := sarama.NewAsyncProducer(d.brokers, sc)
	if err != nil {
		return 0, fmt.Errorf("raw producer: %w", err)
	}
	feedCtx, stopFeed := context.WithCancel(ctx)
	fed := make(chan struct{})
	defer func() {
		// Nothing may be sent to Input once Close begins.
		stopFeed()
		<-fed
		_ = producer.Close()
	}()
	start := time.Now()
	go func() {
		defer close(fed)
		for _, r := range out {
			select {
			case producer.Input() <- r:
			case <-feedCtx.Done():
				return
			}
		}
	}()
	for done := 0; done < len(out); done++ {
		select {
		case <-producer.Successes():
			count.Add(1)
		case perr := <-producer.Errors():
			return 0, fmt.Errorf("raw produce: %w", perr.Err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return time.Since(start), nil
}

func (d *kafkaDestination) close() {
	if d.admin != nil {
		if d.cluster == nil {
			// A cluster of the user's: remove the run's topic.
			_ = d.admin.DeleteTopic(d.topic)
		}
		_ = d.admin.Close()
	}
	if d.client != nil {
		_ = d.client.Close()
	}
	if d.cluster != nil {
		d.cluster.Close()
	}
}

// PostgreSQL (watermill-sql): the topic's table in the bench database. Its
// baseline is the raw claim-and-delete loop, the ceiling of any relay on
// this database, not a client loop.

type postgresDestination struct {
	e     *env
	topic string
}

func (d *postgresDestination) config() broker.Config {
	return broker.Config{Kind: broker.KindPostgres, URL: d.e.dsn, Logger: d.e.cfg.Logger}
}

func (d *postgresDestination) table() string {
	return wmsql.DefaultPostgreSQLSchema{}.MessagesTable(d.topic)
}

func (d *postgresDestination) reset(ctx context.Context) error {
	var exists bool
	if err := d.e.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, d.table()).Scan(&exists); err != nil || !exists {
		return err
	}
	_, err := d.e.pool.Exec(ctx, `TRUNCATE `+d.table())
	return err
}

func (d *postgresDestination) stored(ctx context.Context) (int64, error) {
	var n int64
	err := d.e.pool.QueryRow(ctx, `SELECT count(*) FROM `+d.table()).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

func (d *postgresDestination) raw(context.Context, []*message.Message, *atomic.Int64) (time.Duration, error) {
	return 0, errors.New("postgres: the baseline is the raw claim-and-delete loop")
}

func (d *postgresDestination) close() {}
