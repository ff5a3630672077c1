package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/worker"
)

// profilePollInterval is the pause between two polls of the latency run's
// profile detector.
const profilePollInterval = time.Millisecond

// subscribeTimeout bounds the wait for a child worker's subscriptions.
const subscribeTimeout = 30 * time.Second

// workerLatency starts `outboxd worker` with o on empty tables and a fresh
// stream, waits until each of its handlers is subscribed, then signs users
// up at e.cfg.Rate for e.cfg.Duration: each user's row is committed, its
// user.created published to NATS right after the commit, and the time from
// the commit until its profile row is committed is measured by polling
// profiles every profilePollInterval.
func (e *env) workerLatency(ctx context.Context, label string, o workerOpts) (latencies, error) {
	if err := e.resetWorkerTables(ctx, true); err != nil {
		return latencies{}, err
	}
	if err := e.freshUserCreatedStream(ctx); err != nil {
		return latencies{}, err
	}
	w, err := e.startWorker(ctx, o)
	if err != nil {
		return latencies{}, err
	}
	lats, err := e.measureProfileLatency(ctx, label, w, o)
	if err = errors.Join(err, w.stop()); err == nil {
		err = e.checkNoDeadLetters(ctx)
	}
	if err != nil {
		return latencies{}, fmt.Errorf("%s: %w", label, err)
	}
	return summarize(lats), nil
}

// measureProfileLatency is workerLatency's load and measurement once the
// worker w runs.
func (e *env) measureProfileLatency(ctx context.Context, label string, w *workerProc, o workerOpts) ([]time.Duration, error) {
	if err := e.waitSubscribed(ctx, w, o.handlers); err != nil {
		return nil, err
	}
	pub, err := broker.NewPublisher(ctx, e.brokerConfig())
	if err != nil {
		return nil, err
	}
	defer pub.Close()
	d := e.startProfileDetector(ctx)
	defer d.stop()
	total := int(e.cfg.Duration.Seconds() * float64(e.cfg.Rate))
	var sent atomic.Int64
	stopProgress := progress(e.cfg.Progress, fmt.Sprintf("%s at %d msg/s", label, e.cfg.Rate), int64(total), &sent)
	err = e.steadyLoad(ctx, total, func(ctx context.Context, wr, i int) error {
		u := newWorkerUser(wr, i)
		err := txOp(ctx, e.pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, insertUserSQL, u.ev.UserID, u.ev.Email, u.ev.Name, fakeHash, u.ev.CreatedAt)
			return err
		})
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		d.committed(u.ev.UserID, time.Now())
		if err := pub.Publish(event.TopicUserCreated, u.message()); err != nil {
			return fmt.Errorf("publish user.created: %w", err)
		}
		sent.Add(1)
		return nil
	})
	stopProgress()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	for d.detected.Load() < int64(total) {
		if err := errors.Join(d.failed(), w.exited()); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d profile rows committed a minute after the load", d.detected.Load(), total)
		}
		if !sleepCtx(ctx, 5*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	return d.stop(), nil
}

// waitSubscribed waits until the durable consumer of each of handlers on
// the user.created stream has its subscriber: the worker takes messages.
func (e *env) waitSubscribed(ctx context.Context, w *workerProc, handlers []string) error {
	js, closeJS, err := e.natsJS()
	if err != nil {
		return err
	}
	defer closeJS()
	deadline := time.Now().Add(subscribeTimeout)
	for _, h := range handlers {
		for {
			name, err := js.StreamNameBySubject(event.TopicUserCreated, nats.Context(ctx))
			if err == nil {
				var info *nats.ConsumerInfo
				if info, err = js.ConsumerInfo(name, worker.Group(h), nats.Context(ctx)); err == nil && info.PushBound {
					break
				}
			}
			if err := w.exited(); err != nil {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the worker's %s handler did not subscribe within %s (last: %v)", h, subscribeTimeout, err)
			}
			if !sleepCtx(ctx, 10*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	return nil
}

// profileDetector polls profiles for the users committed and not yet
// seen there, and measures each one's commit → profile row committed.
type profileDetector struct {
	pool     *pgxpool.Pool
	mu       sync.Mutex
	pending  map[uuid.UUID]time.Time // user id → commit time
	lat      []time.Duration
	err      error
	detected atomic.Int64
	stop     func() []time.Duration
}

// startProfileDetector polls until stop, which returns the latencies.
func (e *env) startProfileDetector(ctx context.Context) *profileDetector {
	d := &profileDetector{pool: e.pool, pending: map[uuid.UUID]time.Time{}}
	stopPolling := pollLoop(ctx, profilePollInterval, func(ctx context.Context) (bool, error) {
		return false, d.poll(ctx)
	}, func(err error) {
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
	})
	var once sync.Once
	d.stop = func() []time.Duration {
		once.Do(stopPolling)
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.lat
	}
	return d
}

// committed notes that user id's row was committed at t.
func (d *profileDetector) committed(id uuid.UUID, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending[id] = t
}

// poll looks for the pending users' profiles once. A profile found counts
// as committed when the poll was sent: the snapshot that saw it was taken
// just after.
func (d *profileDetector) poll(ctx context.Context) error {
	d.mu.Lock()
	ids := make([]uuid.UUID, 0, len(d.pending))
	for id := range d.pending {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	sent := time.Now()
	rows, err := d.pool.Query(ctx, `SELECT user_id FROM profiles WHERE user_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("poll profiles: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("poll profiles: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range found {
		d.lat = append(d.lat, max(sent.Sub(d.pending[id]), 0))
		delete(d.pending, id)
	}
	d.detected.Add(int64(len(found)))
	return nil
}

// failed is the poll's error, if it stopped on one.
func (d *profileDetector) failed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}
