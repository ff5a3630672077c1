package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/outbox"
)

// latencyTargetMS is issue 7's target for the relay's commit → publish p99
// at 500 msg/s.
const latencyTargetMS = 20

// pipeline is one way of getting a committed event to the broker: outboxd's
// relay or Watermill's forwarder.
type pipeline struct {
	name string
	// enqueue writes m in tx, the caller's signup transaction.
	enqueue func(ctx context.Context, tx pgx.Tx, m outbox.Message) error
	// start starts moving committed events to pub until stop.
	start func(ctx context.Context, pub message.Publisher) (stop func(), err error)
}

// ourPipeline is outbox.Enqueue and the relay, woken by NOTIFY and polling
// at the relay's default interval.
func (e *env) ourPipeline() pipeline {
	return pipeline{
		name:    "outboxd relay",
		enqueue: func(ctx context.Context, tx pgx.Tx, m outbox.Message) error { return outbox.EnqueueTx(ctx, tx, m) },
		start: func(ctx context.Context, pub message.Publisher) (func(), error) {
			r, err := e.startRelay(ctx, pub, 0)
			if err != nil {
				return nil, err
			}
			return r.stop, nil
		},
	}
}

// latencyResult holds the latencies of one pipeline at a steady rate.
type latencyResult struct {
	publish, handler latencies
	// horizonP99 and horizonMax are the age of the cluster's oldest open
	// transaction during the run, in ms.
	horizonP99, horizonMax float64
}

// measureLatency signs users up at e.cfg.Rate for e.cfg.Duration through p,
// and measures commit → publish (the publisher's Publish returned: the
// broker acknowledged) and commit → handler (a subscriber of the topic got
// the message).
func (e *env) measureLatency(ctx context.Context, p pipeline) (latencyResult, error) {
	if err := e.resetTables(ctx); err != nil {
		return latencyResult{}, err
	}
	bcfg := e.brokerConfig()
	natsPub, err := broker.NewPublisher(ctx, bcfg)
	if err != nil {
		return latencyResult{}, err
	}
	defer natsPub.Close()
	// The stream exists once something was published to it; purge what an
	// earlier run left so the new group starts on an empty stream.
	if err := e.purgeIfExists(ctx); err != nil {
		return latencyResult{}, err
	}

	var (
		mu        sync.Mutex
		committed = map[string]time.Time{}
		published = map[string]time.Time{}
		handled   = map[string]time.Time{}
	)
	pub := &countingPublisher{pub: natsPub, after: func(m *message.Message) {
		now := time.Now()
		mu.Lock()
		published[m.UUID] = now
		mu.Unlock()
	}}
	sub, err := broker.NewSubscriber(ctx, bcfg, "bench-latency-"+randomHex(4))
	if err != nil {
		return latencyResult{}, err
	}
	defer sub.Close()
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	msgs, err := sub.Subscribe(subCtx, event.TopicUserCreated)
	if err != nil {
		return latencyResult{}, fmt.Errorf("subscribe: %w", err)
	}
	var handledCount atomic.Int64
	go func() {
		for m := range msgs {
			now := time.Now()
			mu.Lock()
			if _, ok := handled[m.UUID]; !ok {
				handled[m.UUID] = now
				handledCount.Add(1)
			}
			mu.Unlock()
			m.Ack()
		}
	}()

	stopPipeline, err := p.start(ctx, pub)
	if err != nil {
		return latencyResult{}, err
	}
	defer stopPipeline()

	total := int(e.cfg.Duration.Seconds() * float64(e.cfg.Rate))
	horizon := e.sampleHorizon(ctx)
	defer horizon.stop()
	var sent atomic.Int64
	stopProgress := progress(e.cfg.Progress, fmt.Sprintf("latency %s at %d msg/s", p.name, e.cfg.Rate), int64(total), &sent)
	err = e.steadyLoad(ctx, total, func(ctx context.Context, w, i int) error {
		id, email := newUser(w, i)
		m := userCreated(id, email, time.Now().UTC())
		m.ID = uuid.New()
		err := txOp(ctx, e.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)`,
				id, email, "Bench User", fakeHash); err != nil {
				return fmt.Errorf("insert user: %w", err)
			}
			return p.enqueue(ctx, tx, m)
		})
		if err != nil {
			return err
		}
		now := time.Now()
		mu.Lock()
		committed[m.ID.String()] = now
		mu.Unlock()
		sent.Add(1)
		return nil
	})
	stopProgress()
	if err != nil {
		return latencyResult{}, fmt.Errorf("latency %s: %w", p.name, err)
	}
	deadline := time.Now().Add(time.Minute)
	for handledCount.Load() < int64(total) {
		if time.Now().After(deadline) {
			return latencyResult{}, fmt.Errorf("latency %s: %d of %d messages handled after a minute", p.name, handledCount.Load(), total)
		}
		if !sleepCtx(ctx, 5*time.Millisecond) {
			return latencyResult{}, ctx.Err()
		}
	}

	horizon.stop()
	hp99, hmax := horizon.summary()
	mu.Lock()
	defer mu.Unlock()
	var pubLat, handlerLat []time.Duration
	for id, t0 := range committed {
		if t, ok := published[id]; ok {
			pubLat = append(pubLat, max(t.Sub(t0), 0))
		}
		if t, ok := handled[id]; ok {
			handlerLat = append(handlerLat, max(t.Sub(t0), 0))
		}
	}
	return latencyResult{publish: summarize(pubLat), handler: summarize(handlerLat), horizonP99: hp99, horizonMax: hmax}, nil
}

// steadyLoad calls op total times at e.cfg.Rate, spread over a few
// goroutines so that one slow commit does not hold the rate back.
func (e *env) steadyLoad(ctx context.Context, total int, op func(ctx context.Context, w, i int) error) error {
	workers := e.concurrency(8)
	ticks := make(chan int, workers*4)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := range workers {
		wg.Go(func() {
			for i := range ticks {
				if err := op(ctx, w, i); err != nil {
					errOnce.Do(func() { firstErr = err })
					cancel()
					return
				}
			}
		})
	}
	interval := time.Second / time.Duration(e.cfg.Rate)
	start := time.Now()
loop:
	for i := range total {
		// Absolute schedule: a late tick does not push the later ones back.
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 && !sleepCtx(ctx, d) {
			break
		}
		select {
		case ticks <- i:
		case <-ctx.Done():
			break loop
		}
	}
	close(ticks)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// purgeIfExists empties the user.created stream if it exists.
func (e *env) purgeIfExists(ctx context.Context) error {
	js, closeJS, err := e.jetStream(ctx)
	if err != nil {
		return err
	}
	defer closeJS()
	if _, err := js.StreamNameBySubject(ctx, event.TopicUserCreated); err != nil {
		return nil // not created yet
	}
	return purgeStream(ctx, js)
}

// runLatency measures the relay's commit → publish and commit → handler
// latency at a steady rate.
func runLatency(ctx context.Context, e *env) ([]Table, error) {
	res, err := e.measureLatency(ctx, e.ourPipeline())
	if err != nil {
		return nil, err
	}
	t := Table{
		Name:     "latency",
		Title:    fmt.Sprintf("latency: commit → publish and commit → handler at %d msg/s for %s (NATS JetStream)", e.cfg.Rate, e.cfg.Duration),
		Baseline: "target",
		Rows: []Row{
			{Figure: "commit → publish p50", Unit: "ms", Ours: res.publish.p50},
			{Figure: "commit → publish p95", Unit: "ms", Ours: res.publish.p95},
			{Figure: "commit → publish p99", Unit: "ms", Ours: res.publish.p99, Baseline: latencyTargetMS, LowerIsBetter: true},
			{Figure: "commit → handler p50", Unit: "ms", Ours: res.handler.p50},
			{Figure: "commit → handler p95", Unit: "ms", Ours: res.handler.p95},
			{Figure: "commit → handler p99", Unit: "ms", Ours: res.handler.p99},
			{Figure: "oldest open transaction in the cluster, p99 of 50 ms samples", Unit: "ms", Ours: res.horizonP99},
			{Figure: "oldest open transaction in the cluster, max", Unit: "ms", Ours: res.horizonMax},
		},
		Notes: []string{
			"each message is one signup-shaped transaction (user insert + outbox.Enqueue); the clock starts when COMMIT returns",
			"publish = the broker acknowledged the relay's Publish; handler = a JetStream durable consumer received it",
			"the relay is woken by LISTEN/NOTIFY; its 1 s poll only covers lost notifications",
			fmt.Sprintf("the target column is issue 7's p99 ≤ %d ms; ratio ≥ 1 means met", latencyTargetMS),
			"a row is published only once every transaction older than it has ended, in any database of the server: the oldest open transaction bounds how late a row can become eligible",
		},
	}
	if err := writeLatencyChart(e.cfg.OutDir, "latency.svg", fmt.Sprintf("outboxd latency at %d msg/s", e.cfg.Rate), latencyTargetMS, []series{
		{"relay: commit → publish", res.publish},
		{"relay: commit → handler", res.handler},
	}); err != nil {
		return nil, err
	}
	return []Table{t}, nil
}
