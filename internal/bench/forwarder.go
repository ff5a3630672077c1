package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// forwarderTopic is the watermill-sql topic (table) the forwarder reads.
const forwarderTopic = "bench_forwarder"

// forwarderSchema is watermill-sql's stock PostgreSQL schema, as its
// documentation sets the forwarder up.
var forwarderSchema = wmsql.DefaultPostgreSQLSchema{}

// watermillMessage is m as a Watermill message, as the relay publishes it.
func watermillMessage(m outbox.Message) *message.Message {
	wm := message.NewMessage(m.ID.String(), m.Payload)
	for k, v := range m.Metadata {
		wm.Metadata.Set(k, v)
	}
	wm.Metadata.Set(outbox.MetadataKey, m.Key)
	return wm
}

// forwarderPipeline is Watermill's forwarder: the event is published in the
// transaction to a watermill-sql table through forwarder.Publisher, and a
// forwarder.Forwarder moves it to the broker. Its subscriber reads at
// watermill-sql's defaults: batches of 100, a poll a second when idle.
func (e *env) forwarderPipeline() (pipeline, error) {
	logger := watermill.NewSlogLogger(e.cfg.Logger)
	if err := e.initForwarderTable(logger); err != nil {
		return pipeline{}, err
	}
	return pipeline{
		name: "watermill forwarder",
		enqueue: func(ctx context.Context, tx pgx.Tx, m outbox.Message) error {
			p, err := wmsql.NewPublisher(wmsql.TxFromPgx(tx), wmsql.PublisherConfig{SchemaAdapter: forwarderSchema}, logger)
			if err != nil {
				return fmt.Errorf("watermill-sql publisher: %w", err)
			}
			fp := forwarder.NewPublisher(p, forwarder.PublisherConfig{ForwarderTopic: forwarderTopic})
			wm := watermillMessage(m)
			wm.SetContext(ctx)
			if err := fp.Publish(m.Topic, wm); err != nil {
				return fmt.Errorf("forwarder publish: %w", err)
			}
			return nil
		},
		start: func(ctx context.Context, pub message.Publisher) (func(), error) {
			return e.startForwarder(ctx, pub, logger)
		},
	}, nil
}

// initForwarderTable creates the forwarder's table and offsets.
func (e *env) initForwarderTable(logger watermill.LoggerAdapter) error {
	sub, err := e.forwarderSubscriber(logger)
	if err != nil {
		return err
	}
	defer sub.Close()
	if err := sub.SubscribeInitialize(forwarderTopic); err != nil {
		return fmt.Errorf("initialize forwarder table: %w", err)
	}
	return nil
}

func (e *env) forwarderSubscriber(logger watermill.LoggerAdapter) (*wmsql.Subscriber, error) {
	sub, err := wmsql.NewSubscriber(wmsql.BeginnerFromPgx(e.pool), wmsql.SubscriberConfig{
		SchemaAdapter:    forwarderSchema,
		OffsetsAdapter:   wmsql.DefaultPostgreSQLOffsetsAdapter{},
		InitializeSchema: true,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("watermill-sql subscriber: %w", err)
	}
	return sub, nil
}

// startForwarder runs a forwarder from the table to pub until stop.
func (e *env) startForwarder(ctx context.Context, pub message.Publisher, logger watermill.LoggerAdapter) (func(), error) {
	sub, err := e.forwarderSubscriber(logger)
	if err != nil {
		return nil, err
	}
	f, err := forwarder.NewForwarder(sub, pub, logger, forwarder.Config{ForwarderTopic: forwarderTopic, CloseTimeout: 5 * time.Second})
	if err != nil {
		sub.Close()
		return nil, fmt.Errorf("forwarder: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	select {
	case <-f.Running():
	case <-done:
		return nil, fmt.Errorf("forwarder stopped at start")
	case <-time.After(30 * time.Second):
		_ = f.Close()
		return nil, fmt.Errorf("forwarder did not start within 30 s")
	}
	return func() {
		_ = f.Close()
		<-done
		_ = sub.Close()
	}, nil
}

// fillForwarder writes n enveloped user.created messages to the forwarder's
// table, 500 per statement.
func (e *env) fillForwarder(ctx context.Context, n int) error {
	fmt.Fprintf(e.cfg.Progress, "filling the forwarder table with %d messages\n", n)
	logger := watermill.NewSlogLogger(e.cfg.Logger)
	p, err := wmsql.NewPublisher(wmsql.BeginnerFromPgx(e.pool), wmsql.PublisherConfig{SchemaAdapter: forwarderSchema}, logger)
	if err != nil {
		return fmt.Errorf("watermill-sql publisher: %w", err)
	}
	fp := forwarder.NewPublisher(p, forwarder.PublisherConfig{ForwarderTopic: forwarderTopic})
	batch := make([]*message.Message, 0, 500)
	for i := range n {
		id, email := newUser(0, i)
		m := userCreated(id, email, time.Now().UTC())
		m.ID = id
		wm := watermillMessage(m)
		wm.SetContext(ctx)
		batch = append(batch, wm)
		if len(batch) == cap(batch) || i == n-1 {
			if err := fp.Publish(event.TopicUserCreated, batch...); err != nil {
				return fmt.Errorf("fill forwarder table: %w", err)
			}
			batch = batch[:0]
		}
	}
	return nil
}

// runForwarder runs the drain and the latency measurement with outboxd's
// relay and with Watermill's forwarder, side by side on the same PostgreSQL
// and NATS.
func runForwarder(ctx context.Context, e *env) ([]Table, error) {
	n := e.cfg.Messages
	if n == 0 {
		n = MessagesDefault
	}
	fw, err := e.forwarderPipeline()
	if err != nil {
		return nil, err
	}
	natsPub, err := broker.NewPublisher(ctx, e.brokerConfig())
	if err != nil {
		return nil, err
	}
	defer natsPub.Close()

	// Drains.
	ours := &countingPublisher{pub: natsPub}
	ourRate, err := e.relayDrain(ctx, "forwarder bench: relay drain to NATS", ours, n)
	if err != nil {
		return nil, err
	}
	if err := e.fillForwarder(ctx, n); err != nil {
		return nil, err
	}
	theirs := &countingPublisher{pub: natsPub}
	stopProgress := progress(e.cfg.Progress, "forwarder bench: forwarder drain to NATS", int64(n), &theirs.n)
	start := time.Now()
	stop, err := fw.start(ctx, theirs)
	if err != nil {
		stopProgress()
		return nil, err
	}
	err = waitCount(ctx, &theirs.n, int64(n), 30*time.Minute)
	fwTook := time.Since(start)
	stop()
	stopProgress()
	if err != nil {
		return nil, fmt.Errorf("forwarder drain: %w", err)
	}
	fwRate := float64(n) / fwTook.Seconds()

	// Latency at a steady rate.
	ourLat, err := e.measureLatency(ctx, e.relayPipeline(relay.CapturePoll), e.steadyPlan())
	if err != nil {
		return nil, err
	}
	fwLat, err := e.measureLatency(ctx, fw, e.steadyPlan())
	if err != nil {
		return nil, err
	}

	rows := []Row{{Figure: fmt.Sprintf("drain of %d messages to NATS JetStream", n), Unit: "msg/s", Ours: ourRate, Baseline: fwRate}}
	for _, l := range []struct {
		stage    string
		ours, fw latencies
	}{{"commit → publish", ourLat.publish, fwLat.publish}, {"commit → handler", ourLat.handler, fwLat.handler}} {
		rows = append(rows,
			Row{Figure: l.stage + " p50", Unit: "ms", Ours: l.ours.p50, Baseline: l.fw.p50, LowerIsBetter: true},
			Row{Figure: l.stage + " p95", Unit: "ms", Ours: l.ours.p95, Baseline: l.fw.p95, LowerIsBetter: true},
			Row{Figure: l.stage + " p99", Unit: "ms", Ours: l.ours.p99, Baseline: l.fw.p99, LowerIsBetter: true},
		)
	}
	rows = append(rows, Row{Figure: "oldest open transaction in the cluster during the latency run, max", Unit: "ms",
		Ours: ourLat.horizonMax, Baseline: fwLat.horizonMax, LowerIsBetter: true})
	t := Table{
		Name:     "forwarder",
		Title:    fmt.Sprintf("forwarder: outboxd's relay vs Watermill's components/forwarder with watermill-sql (latency at %d msg/s for %s)", e.cfg.Rate, e.cfg.Duration),
		Baseline: "forwarder",
		Rows:     rows,
		Notes: []string{
			"both publish through the same watermill-nats publisher to the same embedded JetStream server, from the same PostgreSQL database",
			"the forwarder runs as documented: forwarder.Publisher over a watermill-sql publisher in the transaction, forwarder.Forwarder reading with a watermill-sql subscriber at its defaults (batches of 100, a 1 s poll when idle)",
			"both drain clocks include the start-up: the relay's leader lock and LISTEN connection, the forwarder's subscription and first poll",
			"ratio = ours/forwarder for rates and forwarder/ours for latencies: how many times better outboxd does",
		},
	}
	if err := writeLatencyChart(e.cfg.OutDir, "latency-vs-forwarder.svg",
		fmt.Sprintf("commit → publish / handler at %d msg/s: outboxd relay vs Watermill forwarder", e.cfg.Rate), latencyTargetMS, []series{
			{"relay: commit → publish", ourLat.publish},
			{"relay: commit → handler", ourLat.handler},
			{"forwarder: commit → publish", fwLat.publish},
			{"forwarder: commit → handler", fwLat.handler},
		}); err != nil {
		return nil, err
	}
	return []Table{t}, nil
}

// waitCount waits until count reaches n, for at most timeout.
func waitCount(ctx context.Context, count *atomic.Int64, n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for count.Load() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d after %s", count.Load(), n, timeout)
		}
		if !sleepCtx(ctx, 2*time.Millisecond) {
			return ctx.Err()
		}
	}
	return nil
}
