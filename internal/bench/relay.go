package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
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

// rawPublishWindow is how many publishes the raw async JetStream loop keeps
// unacknowledged at once.
const rawPublishWindow = 512

// runRelay drains a pre-filled backlog (a) with a no-op publisher against
// the raw claim-and-delete loop, (b) into NATS JetStream against raw
// nats.go publish loops of the same messages, and (c) into PostgreSQL
// through watermill-sql against the raw claim-and-delete loop.
func runRelay(ctx context.Context, e *env) ([]Table, error) {
	n := e.cfg.Messages
	if n == 0 {
		n = MessagesDefault
	}
	lanes := e.concurrency(relay.ConcurrencyDefault)

	// (a) the relay's own overhead.
	var rawCount atomic.Int64
	if err := e.fill(ctx, n); err != nil {
		return nil, err
	}
	stop := progress(e.cfg.Progress, "relay (a) raw claim-and-delete", int64(n), &rawCount)
	t0 := time.Now()
	err := rawDrain(ctx, e.pool, relay.BatchSizeDefault, n, &rawCount)
	rawTook := time.Since(t0)
	stop()
	if err != nil {
		return nil, err
	}
	noop := &countingPublisher{}
	noopRate, err := e.relayDrain(ctx, "relay (a) no-op publisher", noop, n)
	if err != nil {
		return nil, err
	}

	// (b) the broker's ceiling.
	pub, err := broker.NewPublisher(ctx, e.brokerConfig())
	if err != nil {
		return nil, err
	}
	defer pub.Close()
	natsPub := &countingPublisher{pub: pub}
	natsRate, err := e.relayDrain(ctx, "relay (b) NATS JetStream", natsPub, n)
	if err != nil {
		return nil, err
	}
	msgs, err := e.backlogMessages(ctx, n)
	if err != nil {
		return nil, err
	}
	js, closeJS, err := e.jetStream(ctx)
	if err != nil {
		return nil, err
	}
	defer closeJS()
	asyncRate, err := rawPublishAsync(ctx, e, js, msgs)
	if err != nil {
		return nil, err
	}
	syncRate, err := rawPublishSync(ctx, e, js, msgs, lanes)
	if err != nil {
		return nil, err
	}

	// (c) PostgreSQL as the broker (watermill-sql), in the same database.
	pgPub, err := broker.NewPublisher(ctx, broker.Config{
		Kind: broker.KindPostgres, URL: e.dsn, Logger: e.cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	defer pgPub.Close()
	pgRate, err := e.relayDrain(ctx, "relay (c) PostgreSQL (watermill-sql)", &countingPublisher{pub: pgPub}, n)
	if err != nil {
		return nil, err
	}

	rawRate := float64(n) / rawTook.Seconds()
	t := Table{
		Name:     "relay",
		Title:    fmt.Sprintf("relay: drain of a pre-filled backlog of %d rows (%d lanes, batches of %d)", n, lanes, relay.BatchSizeDefault),
		Baseline: "ceiling",
		Rows: []Row{
			{Figure: "(a) no-op publisher vs raw claim-and-delete SQL loop", Unit: "msg/s", Ours: noopRate, Baseline: rawRate},
			{Figure: "(b) NATS JetStream vs raw nats.go PublishAsync loop", Unit: "msg/s", Ours: natsRate, Baseline: asyncRate},
			{Figure: fmt.Sprintf("(b) NATS JetStream vs raw nats.go Publish, %d goroutines", lanes), Unit: "msg/s", Ours: natsRate, Baseline: syncRate},
			{Figure: "(c) PostgreSQL (watermill-sql) vs raw claim-and-delete SQL loop", Unit: "msg/s", Ours: pgRate, Baseline: rawRate},
		},
		Notes: []string{
			"one drain each; the backlog is refilled and the table vacuumed before each drain",
			"the raw SQL loop claims with the relay's xid horizon but without its per-key hold-back, then deletes by id",
			fmt.Sprintf("the raw NATS loops publish the same rows' payloads and headers to the same stream, with fresh Nats-Msg-Ids; PublishAsync keeps %d publishes unacknowledged, Publish waits for each ack as the relay's lanes do", rawPublishWindow),
			"a no-op drain is bound by PostgreSQL (claim and delete); a NATS drain by JetStream's acknowledged, file-backed publishes on the same 2 cores",
			"(c) publishes into watermill-sql's table in the same database: each message is one more INSERT (its own transaction) beside the claim and delete",
		},
	}
	return []Table{t}, nil
}

// fill refills the outbox with progress.
func (e *env) fill(ctx context.Context, n int) error {
	fmt.Fprintf(e.cfg.Progress, "filling the outbox with %d rows\n", n)
	return fillOutbox(ctx, e.pool, n)
}

// relayDrain fills the outbox, then starts a relay publishing through pub
// and returns the rate at which it drains the backlog. The clock includes
// the relay's start (taking the leader lock, opening its LISTEN
// connection), milliseconds against seconds of draining; a relay started
// before the fill would race it.
func (e *env) relayDrain(ctx context.Context, label string, pub *countingPublisher, n int) (float64, error) {
	if err := e.fill(ctx, n); err != nil {
		return 0, err
	}
	pub.n.Store(0)
	stop := progress(e.cfg.Progress, label, int64(n), &pub.n)
	start := time.Now()
	r, err := e.startRelay(ctx, pub, drainPollInterval, relay.CapturePoll)
	if err != nil {
		stop()
		return 0, err
	}
	err = e.waitDrained(ctx, &pub.n, n)
	took := time.Since(start)
	r.stop()
	stop()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", label, err)
	}
	return float64(n) / took.Seconds(), nil
}

// backlogMessages fills the outbox and reads its rows back as NATS
// messages shaped as the relay publishes them, for the raw loops.
func (e *env) backlogMessages(ctx context.Context, n int) ([]*nats.Msg, error) {
	if err := e.fill(ctx, n); err != nil {
		return nil, err
	}
	rows, err := e.pool.Query(ctx, `SELECT message_id, key, payload, metadata::text, created_at FROM outbox ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read backlog: %w", err)
	}
	defer rows.Close()
	msgs := make([]*nats.Msg, 0, n)
	for rows.Next() {
		var (
			id       uuid.UUID
			key, md  string
			payload  []byte
			enqueued time.Time
		)
		if err := rows.Scan(&id, &key, &payload, &md, &enqueued); err != nil {
			return nil, fmt.Errorf("read backlog: %w", err)
		}
		m := nats.NewMsg(event.TopicUserCreated)
		m.Data = payload
		m.Header.Set("_watermill_message_uuid", id.String())
		m.Header.Set("key", key)
		m.Header.Set("enqueued_at", enqueued.UTC().Format(time.RFC3339Nano))
		m.Header.Set("metadata", md)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read backlog: %w", err)
	}
	if _, err := e.pool.Exec(ctx, `TRUNCATE outbox`); err != nil {
		return nil, fmt.Errorf("read backlog: %w", err)
	}
	return msgs, nil
}

// jetStream connects to the run's NATS server.
func (e *env) jetStream(ctx context.Context) (jetstream.JetStream, func(), error) {
	nc, err := nats.Connect(e.natsURL, nats.Name("outboxd bench raw loop"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect NATS: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(rawPublishWindow))
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

// withFreshID gives m a new Nats-Msg-Id, so JetStream's duplicate window
// drops none of the raw loop's publishes.
func withFreshID(m *nats.Msg) *nats.Msg {
	c := nats.NewMsg(m.Subject)
	c.Data = m.Data
	for k, v := range m.Header {
		c.Header[k] = v
	}
	c.Header.Set(jetstream.MsgIDHeader, uuid.NewString())
	return c
}

// rawPublishAsync publishes msgs with PublishMsgAsync, a window of
// rawPublishWindow unacknowledged, and returns the rate.
func rawPublishAsync(ctx context.Context, e *env, js jetstream.JetStream, msgs []*nats.Msg) (float64, error) {
	if err := purgeStream(ctx, js); err != nil {
		return 0, err
	}
	var count atomic.Int64
	stop := progress(e.cfg.Progress, "relay (b) raw PublishAsync loop", int64(len(msgs)), &count)
	defer stop()
	start := time.Now()
	for _, m := range msgs {
		// Blocks while rawPublishWindow publishes await their acks.
		if _, err := js.PublishMsgAsync(withFreshID(m), jetstream.WithStallWait(time.Minute)); err != nil {
			return 0, fmt.Errorf("raw publish: %w", err)
		}
		count.Add(1)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(time.Minute):
		return 0, fmt.Errorf("raw publish: acks missing after a minute")
	}
	return float64(len(msgs)) / time.Since(start).Seconds(), nil
}

// rawPublishSync publishes msgs from workers goroutines, each waiting for
// every ack, and returns the rate.
func rawPublishSync(ctx context.Context, e *env, js jetstream.JetStream, msgs []*nats.Msg, workers int) (float64, error) {
	if err := purgeStream(ctx, js); err != nil {
		return 0, err
	}
	var (
		count    atomic.Int64
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	stop := progress(e.cfg.Progress, fmt.Sprintf("relay (b) raw Publish loop, %d goroutines", workers), int64(len(msgs)), &count)
	defer stop()
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(msgs)) {
					return
				}
				if _, err := js.PublishMsg(ctx, withFreshID(msgs[i])); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("raw publish: %w", err) })
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(len(msgs)) / time.Since(start).Seconds(), nil
}
