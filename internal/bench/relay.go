package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/relay"
)

// drainPollInterval is the relay's poll during drains: rows held back by
// another transaction when it looked are picked up soon after, as the raw
// loop's retry does.
const drainPollInterval = 10 * time.Millisecond

// Issue 12's targets: the relay's drain rate as a share of the raw loop's,
// into a broker and into PostgreSQL through watermill-sql.
const (
	relayBrokerTarget   = 0.4
	relayPostgresTarget = 0.2
)

// transportNames name each transport in the relay benchmark's rows.
var transportNames = map[broker.Kind]string{
	broker.KindNATS:     "NATS JetStream",
	broker.KindAMQP:     "RabbitMQ",
	broker.KindRedis:    "Redis Streams",
	broker.KindKafka:    "Kafka",
	broker.KindPostgres: "PostgreSQL (watermill-sql)",
}

// rawLoopName names kind's raw loop in the relay benchmark's rows.
func (e *env) rawLoopName(kind broker.Kind) string {
	switch kind {
	case broker.KindNATS:
		return fmt.Sprintf("raw nats.go PublishAsync loop (PublishAsyncMaxPending %d)", rawNATSWindow)
	case broker.KindAMQP:
		return fmt.Sprintf("raw amqp091 loop, publisher confirms, %d outstanding", rawAMQPWindow)
	case broker.KindRedis:
		return fmt.Sprintf("raw go-redis pipelined XADD loop, runs of %d", rawRedisRun)
	case broker.KindKafka:
		return "raw sarama idempotent AsyncProducer loop"
	}
	return "raw claim-and-delete SQL loop"
}

// transportName names kind in the relay benchmark's rows; Kafka's says
// which cluster: the in-process kfake or that of Config.KafkaBrokers
// (--kafka-brokers, KAFKA_BROKERS).
func (e *env) transportName(kind broker.Kind) string {
	if kind == broker.KindKafka {
		if e.cfg.KafkaBrokers == "" {
			return "Kafka (kfake, in-process)"
		}
		return "Kafka (KAFKA_BROKERS cluster)"
	}
	return transportNames[kind]
}

// runRelay drains a pre-filled backlog with a no-op publisher against the
// raw claim-and-delete loop, then, per transport of Config.Brokers, into
// the broker against the transport's raw client loop publishing the same
// kind of rows (payloads and headers) to the same destination, and into
// PostgreSQL through watermill-sql against the raw claim-and-delete loop.
func runRelay(ctx context.Context, e *env) ([]Table, error) {
	n := cmp.Or(e.cfg.Messages, MessagesDefault)
	lanes := e.concurrency(relay.ConcurrencyDefault)

	// The relay's own overhead, and PostgreSQL's ceiling.
	var rawCount atomic.Int64
	if err := e.fill(ctx, n); err != nil {
		return nil, err
	}
	stop := progress(e.cfg.Progress, "relay: raw claim-and-delete", int64(n), &rawCount)
	t0 := time.Now()
	err := rawDrain(ctx, e.pool, relay.BatchSizeDefault, n, &rawCount)
	rawSQLRate := float64(n) / time.Since(t0).Seconds()
	stop()
	if err != nil {
		return nil, err
	}
	noopRate, err := e.relayDrain(ctx, "relay: no-op publisher", &countingPublisher{}, n)
	if err != nil {
		return nil, err
	}
	rows := []Row{{Figure: "no-op publisher vs raw claim-and-delete SQL loop", Unit: "msg/s", Ours: noopRate, Baseline: rawSQLRate}}

	// One topic of the run's on every broker, so that nothing else on a
	// shared RabbitMQ, Redis or Kafka mixes with it.
	topic := "bench_" + randomHex(4) + ".user.created"
	var backlog []rawRow
	for _, kind := range e.cfg.Brokers {
		if kind != broker.KindPostgres && backlog == nil {
			if backlog, err = e.backlogRows(ctx, n); err != nil {
				return nil, err
			}
		}
		relayRate, rawRate, err := e.relayVsRaw(ctx, kind, topic, n, backlog)
		if err != nil {
			return nil, err
		}
		target := relayBrokerTarget
		if kind == broker.KindPostgres {
			rawRate, target = rawSQLRate, relayPostgresTarget
		}
		r := Row{Figure: fmt.Sprintf("%s vs %s", e.transportName(kind), e.rawLoopName(kind)), Unit: "msg/s", Ours: relayRate, Baseline: rawRate}
		r.Goal = goal(r.Ratio() >= target, "≥ %.1f", target)
		rows = append(rows, r)
		if kind == broker.KindPostgres {
			continue
		}
		// The relay's claims and deletes and the broker share the cores:
		// draining to the broker costs at least the no-op drain's time
		// plus the raw loop's.
		if combined := 1 / (1/noopRate + 1/rawRate); combined/rawRate < target {
			rows = append(rows, Row{
				Figure: fmt.Sprintf("%s: combined ceiling 1/(1/no-op + 1/raw), no-op drain %.0f msg/s",
					e.transportName(kind), noopRate),
				Unit: "msg/s", Ours: combined, Baseline: rawRate,
			})
		}
	}
	t := Table{
		Name:     "relay",
		Title:    fmt.Sprintf("relay: drain of a pre-filled backlog of %d rows (%d lanes, batches of %d), per transport beside its raw client loop", n, lanes, relay.BatchSizeDefault),
		Baseline: "raw",
		Rows:     rows,
		Notes: []string{
			"one drain or loop each, one after the other; the backlog is refilled and the table vacuumed before each drain, the destination emptied before each drain and loop, and its message count checked after each",
			"the relay publishes through broker.NewPublisher, a relay.BatchPublisher: runs of a batch's messages in flight at once, one unacknowledged message per key, as in production; the no-op publisher is a BatchPublisher too",
			"the raw SQL loop claims with the relay's xid horizon but without its per-key hold-back, then deletes by id",
			fmt.Sprintf("the raw client loops publish rows of the same fill (same payload and metadata shape, the relay's headers: message_id, key, enqueued_at, correlation_id, traceparent, through each transport's Watermill marshaler) to the same destination (topic %s; RabbitMQ: its fanout exchange and a durable queue bound to it; Redis: its stream; Kafka: %d partitions, record key = message key), each message's storage acknowledged; the messages are marshaled before the clock starts", topic, kafkaPartitions),
			"the relay's clock includes its start (leader lock, LISTEN connection), milliseconds against seconds of draining",
			"PostgreSQL (watermill-sql) publishes into watermill-sql's table in the same database: one INSERT of a run, one transaction, beside the claim and delete; its baseline is the raw claim-and-delete loop",
			"a combined-ceiling row appears where it is below the target: relay, broker and PostgreSQL share the machine's cores, so a drain takes at least the no-op drain's time plus the raw loop's",
		},
	}
	return []Table{t}, nil
}

// relayVsRaw drains n rows through the relay into kind's destination, then
// publishes backlog there with the raw loop (PostgreSQL has none: its raw
// rate is 0), and returns both rates.
func (e *env) relayVsRaw(ctx context.Context, kind broker.Kind, topic string, n int, backlog []rawRow) (relayRate, rawRate float64, err error) {
	if kind == broker.KindPostgres {
		// The bench database is the run's own: the usual topic.
		topic = event.TopicUserCreated
	}
	d, err := e.newDestination(ctx, kind, topic)
	if err != nil {
		return 0, 0, err
	}
	defer d.close()
	pub, err := broker.NewPublisher(ctx, d.config())
	if err != nil {
		return 0, 0, err
	}
	defer pub.Close()
	name := e.transportName(kind)
	if err := d.reset(ctx); err != nil {
		return 0, 0, err
	}
	relayRate, err = e.relayDrainWith(ctx, "relay: "+name, &countingPublisher{pub: pub}, n, drainOpts{topic: topic})
	if err != nil {
		return 0, 0, err
	}
	if err := checkStored(ctx, d, n, name+", relay"); err != nil {
		return 0, 0, err
	}
	if kind == broker.KindPostgres {
		return relayRate, 0, nil
	}

	msgs, err := rawMessages(backlog[:n])
	if err != nil {
		return 0, 0, err
	}
	if err := d.reset(ctx); err != nil {
		return 0, 0, err
	}
	var count atomic.Int64
	stop := progress(e.cfg.Progress, "relay: "+name+", "+e.rawLoopName(kind), int64(n), &count)
	took, err := d.raw(ctx, msgs, &count)
	stop()
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", name, err)
	}
	if err := checkStored(ctx, d, n, name+", raw loop"); err != nil {
		return 0, 0, err
	}
	return relayRate, float64(n) / took.Seconds(), nil
}

// checkStored fails unless d holds at least n messages.
func checkStored(ctx context.Context, d destination, n int, what string) error {
	got, err := d.stored(ctx)
	if err != nil {
		return fmt.Errorf("%s: count the messages stored: %w", what, err)
	}
	if got < int64(n) {
		return fmt.Errorf("%s: %d of %d messages stored", what, got, n)
	}
	return nil
}

// fill refills the outbox with progress.
func (e *env) fill(ctx context.Context, n int) error {
	return e.fillTopic(ctx, n, event.TopicUserCreated)
}

// fillTopic is fill with the rows going to topic.
func (e *env) fillTopic(ctx context.Context, n int, topic string) error {
	fmt.Fprintf(e.cfg.Progress, "filling the outbox with %d rows\n", n)
	return fillOutboxTopic(ctx, e.pool, n, topic)
}

// drainOpts vary a relay drain.
type drainOpts struct {
	// topic is the rows' topic; empty is user.created.
	topic string
	// retention is the relay's Retention.
	retention time.Duration
	// before, when set, runs once the outbox is filled, before the relay
	// starts and the clock with it.
	before func(context.Context) error
	// midway, when set, runs once half the rows are published, while the
	// relay drains the rest.
	midway func(context.Context) error
}

// relayDrain fills the outbox, then starts a relay publishing through pub
// and returns the rate at which it drains the backlog. The clock includes
// the relay's start (taking the leader lock, opening its LISTEN
// connection), milliseconds against seconds of draining; a relay started
// before the fill would race it.
func (e *env) relayDrain(ctx context.Context, label string, pub *countingPublisher, n int) (float64, error) {
	return e.relayDrainWith(ctx, label, pub, n, drainOpts{})
}

// relayDrainWith is relayDrain varied by opts.
func (e *env) relayDrainWith(ctx context.Context, label string, pub *countingPublisher, n int, opts drainOpts) (float64, error) {
	if err := e.fillTopic(ctx, n, cmp.Or(opts.topic, event.TopicUserCreated)); err != nil {
		return 0, err
	}
	if opts.before != nil {
		if err := opts.before(ctx); err != nil {
			return 0, fmt.Errorf("%s: %w", label, err)
		}
	}
	pub.n.Store(0)
	stop := progress(e.cfg.Progress, label, int64(n), &pub.n)
	start := time.Now()
	r, err := e.startRelayConfig(ctx, pub, relay.Config{PollInterval: drainPollInterval, Capture: relay.CapturePoll, Retention: opts.retention})
	if err != nil {
		stop()
		return 0, err
	}
	midway := make(chan error, 1)
	midCtx, stopMidway := context.WithCancel(ctx)
	defer stopMidway()
	if opts.midway != nil {
		go func() {
			if err := waitCount(midCtx, &pub.n, int64(n/2), 30*time.Minute); err != nil {
				midway <- err
				return
			}
			midway <- opts.midway(midCtx)
		}()
	} else {
		midway <- nil
	}
	err = e.waitDrained(ctx, &pub.n, n)
	took := time.Since(start)
	if err != nil {
		stopMidway()
	}
	err = errors.Join(err, <-midway)
	r.stop()
	stop()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", label, err)
	}
	return float64(n) / took.Seconds(), nil
}

// jetStream connects to the run's NATS server.
func (e *env) jetStream(ctx context.Context) (jetstream.JetStream, func(), error) {
	nc, err := nats.Connect(e.natsURL, nats.Name("outboxd bench raw loop"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect NATS: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(rawNATSWindow))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nc.Close, nil
}

// purgeStream empties the stream of user.created, so that each loop writes
// to a stream of the same size.
func purgeStream(ctx context.Context, js jetstream.JetStream) error {
	name, err := js.StreamNameBySubject(ctx, event.TopicUserCreated)
	if err != nil {
		return fmt.Errorf("find stream: %w", err)
	}
	s, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("find stream: %w", err)
	}
	if err := s.Purge(ctx); err != nil {
		return fmt.Errorf("purge stream: %w", err)
	}
	return nil
}
