package bench

import (
	"context"
	"errors"
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
	"github.com/outboxd/outboxd/relay"
)

// latencyTargetMS is issue 7's target for the relay's commit → publish p99
// at 500 msg/s.
const latencyTargetMS = 20

// Issue 11's targets for the relay in wal: commit → publish p99 at 500
// msg/s, and the same with a 6-s write transaction open.
const (
	walLatencyTargetMS = 5
	longTxTargetMS     = 20
)

// longTxMargin is how long the load of a long-transaction run goes on
// before the transaction opens and after it ends.
const longTxMargin = time.Second

// captureModes are the relay's two sources, in the order the benchmarks
// run them.
var captureModes = []relay.Capture{relay.CapturePoll, relay.CaptureWAL}

// pipeline is one way of getting a committed event to the broker: outboxd's
// relay or Watermill's forwarder.
type pipeline struct {
	name string
	// enqueue writes m in tx, the caller's signup transaction.
	enqueue func(ctx context.Context, tx pgx.Tx, m outbox.Message) error
	// start starts moving committed events to pub until stop.
	start func(ctx context.Context, pub message.Publisher) (stop func(), err error)
}

// relayPipeline is the relay capturing by capture, at its default poll
// interval, fed as each mode is meant to be: outbox.EnqueueTx, whose NOTIFY
// wakes a polling relay, or outbox.Writer{WithoutNotify: true}, which
// spares the writers NOTIFY's commit lock where the relay streams the WAL.
func (e *env) relayPipeline(capture relay.Capture) pipeline {
	w := outbox.Writer{WithoutNotify: capture == relay.CaptureWAL}
	return pipeline{
		name:    "outboxd relay (" + string(capture) + ")",
		enqueue: func(ctx context.Context, tx pgx.Tx, m outbox.Message) error { return w.EnqueueTx(ctx, tx, m) },
		start: func(ctx context.Context, pub message.Publisher) (func(), error) {
			r, err := e.startRelay(ctx, pub, 0, capture)
			if err != nil {
				return nil, err
			}
			return r.stop, nil
		},
	}
}

// latencyPlan is how long a latency run's steady load lasts and the write
// transaction it holds open meanwhile, if any.
type latencyPlan struct {
	load time.Duration
	// longTx, when positive, is how long a write transaction stays open,
	// from longTxAfter into the load.
	longTx, longTxAfter time.Duration
}

// steadyPlan is a run of e.cfg.Duration without a long transaction.
func (e *env) steadyPlan() latencyPlan { return latencyPlan{load: e.cfg.Duration} }

// longTxPlan holds a write transaction open for e.cfg.LongTx, with
// longTxMargin of load before and after it.
func (e *env) longTxPlan() latencyPlan {
	return latencyPlan{load: e.cfg.LongTx + 2*longTxMargin, longTx: e.cfg.LongTx, longTxAfter: longTxMargin}
}

// latencyResult holds the latencies of one pipeline at a steady rate.
type latencyResult struct {
	publish, handler latencies
	// horizonP99 and horizonMax are the age of the cluster's oldest open
	// transaction during the run, in ms.
	horizonP99, horizonMax float64
	// timeline is every message's commit → publish by commit time.
	timeline []latencySample
	// During a long-transaction run: when the transaction was open, since
	// the load began, and the commit → publish of the messages committed
	// meanwhile.
	open, close time.Duration
	during      latencies
}

// measureLatency signs users up at e.cfg.Rate through p for plan.load,
// holding plan's long transaction open meanwhile, and measures commit →
// publish (the publisher's Publish returned: the broker acknowledged) and
// commit → handler (a subscriber of the topic got the message).
func (e *env) measureLatency(ctx context.Context, p pipeline, plan latencyPlan) (latencyResult, error) {
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

	total := int(plan.load.Seconds() * float64(e.cfg.Rate))
	horizon := e.sampleHorizon(ctx)
	defer horizon.stop()
	var sent atomic.Int64
	label := fmt.Sprintf("latency %s at %d msg/s", p.name, e.cfg.Rate)
	if plan.longTx > 0 {
		label += fmt.Sprintf(", a write transaction open for %s", plan.longTx)
	}
	stopProgress := progress(e.cfg.Progress, label, int64(total), &sent)
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	start := time.Now()
	var (
		open, closed time.Time
		txErr        error
		txDone       = make(chan struct{})
	)
	go func() {
		defer close(txDone)
		if plan.longTx > 0 {
			open, closed, txErr = e.holdWriteTx(loadCtx, plan.longTxAfter, plan.longTx)
		}
	}()
	err = e.steadyLoad(loadCtx, total, func(ctx context.Context, w, i int) error {
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
	if err != nil {
		cancelLoad()
	}
	<-txDone
	stopProgress()
	if err = errors.Join(err, txErr); err != nil {
		return latencyResult{}, fmt.Errorf("%s: %w", label, err)
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
	res := latencyResult{horizonP99: hp99, horizonMax: hmax, open: open.Sub(start), close: closed.Sub(start)}
	var pubLat, handlerLat, during []time.Duration
	for id, t0 := range committed {
		if t, ok := published[id]; ok {
			lat := max(t.Sub(t0), 0)
			pubLat = append(pubLat, lat)
			res.timeline = append(res.timeline, latencySample{at: t0.Sub(start), lat: lat})
			if plan.longTx > 0 && !t0.Before(open) && !t0.After(closed) {
				during = append(during, lat)
			}
		}
		if t, ok := handled[id]; ok {
			handlerLat = append(handlerLat, max(t.Sub(t0), 0))
		}
	}
	res.publish, res.handler, res.during = summarize(pubLat), summarize(handlerLat), summarize(during)
	return res, nil
}

// holdWriteTx waits after, then holds a write transaction open (BEGIN;
// SELECT pg_current_xact_id(): it has an xid, as any writer's) in the run's
// database for hold, and returns when it had its xid and when it ended.
func (e *env) holdWriteTx(ctx context.Context, after, hold time.Duration) (open, closed time.Time, err error) {
	if !sleepCtx(ctx, after) {
		return open, closed, ctx.Err()
	}
	err = txOp(ctx, e.pool, func(tx pgx.Tx) error {
		var xid string
		if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid); err != nil {
			return fmt.Errorf("long transaction: %w", err)
		}
		open = time.Now()
		if !sleepCtx(ctx, hold) {
			return ctx.Err()
		}
		return nil
	})
	return open, time.Now(), err
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
// latency at a steady rate in poll and in wal, then each again with a long
// write transaction open, and charts the latency over time of the latter.
func runLatency(ctx context.Context, e *env) ([]Table, error) {
	steady := map[relay.Capture]latencyResult{}
	long := map[relay.Capture]latencyResult{}
	for _, plan := range []struct {
		latencyPlan
		out map[relay.Capture]latencyResult
	}{{e.steadyPlan(), steady}, {e.longTxPlan(), long}} {
		for _, mode := range captureModes {
			res, err := e.measureLatency(ctx, e.relayPipeline(mode), plan.latencyPlan)
			if err != nil {
				return nil, err
			}
			plan.out[mode] = res
		}
	}
	poll, wal := steady[relay.CapturePoll], steady[relay.CaptureWAL]
	longPoll, longWAL := long[relay.CapturePoll], long[relay.CaptureWAL]
	ms := func(figure string, ours, poll float64) Row {
		return Row{Figure: figure, Unit: "ms", Ours: ours, Baseline: poll, LowerIsBetter: true}
	}
	p99 := ms("commit → publish p99", wal.publish.p99, poll.publish.p99)
	p99.Goal = goal(wal.publish.p99 <= poll.publish.p99 && wal.publish.p99 <= walLatencyTargetMS, "≤ poll, ≤ %d ms", walLatencyTargetMS)
	openP99 := ms(fmt.Sprintf("commit → publish p99, committed while a %s write transaction was open", e.cfg.LongTx), longWAL.during.p99, longPoll.during.p99)
	openP99.Goal = goal(longWAL.during.p99 <= longTxTargetMS, "≤ %d ms", longTxTargetMS)
	t := Table{
		Name: "latency",
		Title: fmt.Sprintf("latency: commit → publish and commit → handler at %d msg/s, relay in wal vs poll (NATS JetStream); %s runs, and %s runs with a %s write transaction open",
			e.cfg.Rate, e.cfg.Duration, e.longTxPlan().load, e.cfg.LongTx),
		Baseline: "poll",
		Rows: []Row{
			ms("commit → publish p50", wal.publish.p50, poll.publish.p50),
			ms("commit → publish p95", wal.publish.p95, poll.publish.p95),
			p99,
			ms("commit → handler p50", wal.handler.p50, poll.handler.p50),
			ms("commit → handler p95", wal.handler.p95, poll.handler.p95),
			ms("commit → handler p99", wal.handler.p99, poll.handler.p99),
			ms("oldest open transaction in the cluster, max of 50 ms samples", wal.horizonMax, poll.horizonMax),
			ms(fmt.Sprintf("commit → publish p50, committed while a %s write transaction was open", e.cfg.LongTx), longWAL.during.p50, longPoll.during.p50),
			openP99,
			ms("commit → publish p99, the whole long-transaction run", longWAL.publish.p99, longPoll.publish.p99),
			ms("oldest open transaction in the cluster during the long-transaction run, max", longWAL.horizonMax, longPoll.horizonMax),
		},
		Notes: []string{
			"ours = the relay in wal (RELAY_CAPTURE=wal), its writers on outbox.Writer{WithoutNotify: true}; poll = the relay in poll, its writers on outbox.EnqueueTx (NOTIFY); one relay at a time, in the same run and database",
			"each message is one signup-shaped transaction (user insert + outbox row); the clock starts when COMMIT returns",
			"publish = the broker acknowledged the relay's Publish; handler = a JetStream durable consumer received it",
			"poll is woken by LISTEN/NOTIFY, its 1 s poll only covers lost notifications; wal is started and streaming (slot active, relay_slot.drained_at set) before the load begins, and its slot dropped after each run",
			fmt.Sprintf("long transaction: BEGIN; SELECT pg_current_xact_id(); held %s in the bench database from %s into the load, then committed; \"while open\" counts the messages committed meanwhile", e.cfg.LongTx, longTxMargin),
			fmt.Sprintf("targets (issue 11): wal p99 ≤ poll's of the same run and ≤ %d ms; with the long transaction open ≤ %d ms", walLatencyTargetMS, longTxTargetMS),
			"a polled row is published only once every transaction older than it has ended, in any database of the server: the oldest open transaction bounds how late a row can become eligible; the WAL carries commits in commit order and waits for none",
			"latency-long-tx.svg draws the latency over time of both long-transaction runs",
		},
	}
	if err := writeLatencyChart(e.cfg.OutDir, "latency.svg", fmt.Sprintf("outboxd latency at %d msg/s, relay in poll and in wal", e.cfg.Rate), walLatencyTargetMS, []series{
		{"poll: commit → publish", poll.publish},
		{"poll: commit → handler", poll.handler},
		{"wal: commit → publish", wal.publish},
		{"wal: commit → handler", wal.handler},
	}); err != nil {
		return nil, err
	}
	if err := writeTimelineChart(e.cfg.OutDir, "latency-long-tx.svg",
		fmt.Sprintf("commit → publish at %d msg/s while a %s write transaction is open", e.cfg.Rate, e.cfg.LongTx), longTxTargetMS, []timeline{
			{"relay in poll", longPoll.timeline, longPoll.open, longPoll.close},
			{"relay in wal", longWAL.timeline, longWAL.open, longWAL.close},
		}); err != nil {
		return nil, err
	}
	return []Table{t}, nil
}
