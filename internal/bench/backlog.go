package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/relay"
)

// fillOutbox inserts n user.created rows, one key per user as the signup
// writes them, on a freshly vacuumed table so that every drain starts alike.
func fillOutbox(ctx context.Context, pool *pgxpool.Pool, n int) error {
	return fillOutboxTopic(ctx, pool, n, event.TopicUserCreated)
}

// fillOutboxTopic is fillOutbox with the rows going to topic.
func fillOutboxTopic(ctx context.Context, pool *pgxpool.Pool, n int, topic string) error {
	if _, err := pool.Exec(ctx, `TRUNCATE outbox`); err != nil {
		return fmt.Errorf("fill outbox: %w", err)
	}
	_, err := pool.Exec(ctx, `
INSERT INTO outbox (message_id, topic, key, payload, metadata)
SELECT s.id, $2, s.id::text,
	convert_to(format('{"user_id":"%s","email":"user%s@example.com","name":"User %s","created_at":"%s"}',
		s.id, s.i, s.i, now()), 'UTF8'),
	jsonb_build_object('correlation_id', gen_random_uuid()::text,
		'traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
FROM (SELECT gen_random_uuid() AS id, i FROM generate_series(1, $1) AS i) AS s`, n, topic)
	if err != nil {
		return fmt.Errorf("fill outbox: %w", err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE outbox`); err != nil {
		return fmt.Errorf("fill outbox: %w", err)
	}
	return nil
}

// rawClaimSQL is the relay's claim without its per-key hold-back: the least
// any relay that keeps commit order must ask of PostgreSQL.
const rawClaimSQL = `
SELECT id, message_id, topic, key, payload, metadata, created_at, attempts
FROM outbox
WHERE published_at IS NULL AND next_attempt_at <= now()
	AND xid < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
ORDER BY id
LIMIT $1`

// rawDrain is the ceiling of a relay: claim a batch, delete it by id,
// nothing else, until n rows are gone. Rows held back by an older open
// transaction anywhere on the server are waited for, as the relay must.
func rawDrain(ctx context.Context, pool *pgxpool.Pool, batch, n int, count *atomic.Int64) error {
	total := 0
	for total < n {
		rows, err := pool.Query(ctx, rawClaimSQL, batch)
		if err != nil {
			return fmt.Errorf("raw claim: %w", err)
		}
		var ids []int64
		for rows.Next() {
			var (
				id        int64
				messageID uuid.UUID
				topic     string
				key       string
				payload   []byte
				metadata  []byte
				createdAt time.Time
				attempts  int
			)
			if err := rows.Scan(&id, &messageID, &topic, &key, &payload, &metadata, &createdAt, &attempts); err != nil {
				rows.Close()
				return fmt.Errorf("raw claim: %w", err)
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("raw claim: %w", err)
		}
		if len(ids) == 0 {
			if !sleepCtx(ctx, time.Millisecond) {
				return ctx.Err()
			}
			continue
		}
		if _, err := pool.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids); err != nil {
			return fmt.Errorf("raw delete: %w", err)
		}
		total += len(ids)
		count.Add(int64(len(ids)))
	}
	return nil
}

// countingPublisher counts what pub published; with a nil pub it publishes
// nowhere, the relay's no-op publisher. A relay is given it through
// forRelay, which keeps pub's PublishBatch.
type countingPublisher struct {
	pub message.Publisher
	n   atomic.Int64
	// after, when set, sees every message once published.
	after func(*message.Message)
}

func (p *countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.pub != nil {
		if err := p.pub.Publish(topic, msgs...); err != nil {
			return err
		}
	}
	if p.after != nil {
		for _, m := range msgs {
			p.after(m)
		}
	}
	p.n.Add(int64(len(msgs)))
	return nil
}

func (p *countingPublisher) Close() error { return nil }

// countingBatchPublisher is a countingPublisher that is a
// relay.BatchPublisher: the relay pipelines through it as it does through
// the broker's publisher in production.
type countingBatchPublisher struct{ *countingPublisher }

var _ relay.BatchPublisher = countingBatchPublisher{}

// PublishBatch implements relay.BatchPublisher: the run goes to pub's
// PublishBatch (the no-op publisher takes every message), and the messages
// it stored are counted.
func (p countingBatchPublisher) PublishBatch(ctx context.Context, run []relay.Outgoing) []error {
	var errs []error
	if p.pub != nil {
		errs = p.pub.(relay.BatchPublisher).PublishBatch(ctx, run)
	} else {
		errs = make([]error, len(run))
	}
	published := 0
	for i, err := range errs {
		if err != nil {
			continue
		}
		if p.after != nil {
			p.after(run[i].Message)
		}
		published++
	}
	p.n.Add(int64(published))
	return errs
}

// forRelay is pub as a relay should see it: a counting publisher around a
// relay.BatchPublisher (every broker.NewPublisher is one), or the no-op
// publisher, is one too, so that the relay publishes in pipelined runs as
// in production; anything else is left as it is.
func forRelay(pub message.Publisher) message.Publisher {
	cp, ok := pub.(*countingPublisher)
	if !ok {
		return pub
	}
	if _, batch := cp.pub.(relay.BatchPublisher); batch || cp.pub == nil {
		return countingBatchPublisher{cp}
	}
	return cp
}

// idleRelay is a relay kept running across drains, so its start-up is not
// measured.
type idleRelay struct {
	r    *relay.Relay
	stop func()
}

// slotTimeout bounds the wait for a wal relay's first stream: creating its
// slot waits for every transaction open on the server, other databases'
// included.
const slotTimeout = 2 * time.Minute

// startRelay starts a relay publishing to pub, capturing by capture, and
// returns once it leads and, in CaptureWAL, streams: its slot is active and
// what the table held is published. A wal relay's slot is dropped when it
// stops, so that the next run neither waits for it nor streams what it
// kept.
func (e *env) startRelay(ctx context.Context, pub message.Publisher, poll time.Duration, capture relay.Capture) (*idleRelay, error) {
	return e.startRelayConfig(ctx, pub, relay.Config{PollInterval: poll, Capture: capture})
}

// startRelayConfig is startRelay with cfg's PollInterval, Capture and
// Retention; the bench sets the rest.
func (e *env) startRelayConfig(ctx context.Context, pub message.Publisher, cfg relay.Config) (*idleRelay, error) {
	capture := cfg.Capture
	slot := relay.SlotName(e.database)
	r, err := relay.New(e.pool, forRelay(pub), relay.Config{
		Concurrency:  e.concurrency(0),
		PollInterval: cfg.PollInterval,
		Retention:    cfg.Retention,
		Capture:      capture,
		Slot:         slot,
		Logger:       e.cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = r.Run(ctx)
	}()
	ir := &idleRelay{r: r, stop: func() {
		cancel()
		<-done
		if capture == relay.CaptureWAL {
			dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer dcancel()
			_ = dropSlots(dctx, e.pool, e.database)
		}
	}}
	started := func(what string, timeout time.Duration, ok func() (bool, error)) error {
		deadline := time.Now().Add(timeout)
		for {
			yes, err := ok()
			switch {
			case err != nil:
				return err
			case yes:
				return nil
			}
			select {
			case <-done:
				return fmt.Errorf("relay stopped while waiting to %s: %w", what, runErr)
			case <-time.After(time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("relay did not %s within %s", what, timeout)
			}
		}
	}
	err = started("take the lead", 30*time.Second, func() (bool, error) { return r.IsLeader(), nil })
	if err == nil && capture == relay.CaptureWAL {
		err = started("stream its slot "+slot, slotTimeout, func() (bool, error) {
			var streaming bool
			err := e.pool.QueryRow(ctx, `
SELECT EXISTS (SELECT 1 FROM pg_replication_slots s JOIN relay_slot r USING (slot_name)
	WHERE s.slot_name = $1 AND s.active AND r.drained_at IS NOT NULL)`, slot).Scan(&streaming)
			return streaming, err
		})
	}
	if err != nil {
		ir.stop()
		return nil, err
	}
	return ir, nil
}

// waitDrained returns once the relay has published n rows and removed
// them (or, with a retention, marked them published).
func (e *env) waitDrained(ctx context.Context, published *atomic.Int64, n int) error {
	for published.Load() < int64(n) {
		if !sleepCtx(ctx, time.Millisecond) {
			return ctx.Err()
		}
	}
	for {
		var left bool
		if err := e.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)`).Scan(&left); err != nil {
			return fmt.Errorf("check drained: %w", err)
		}
		if !left {
			return nil
		}
		if !sleepCtx(ctx, time.Millisecond) {
			return ctx.Err()
		}
	}
}
