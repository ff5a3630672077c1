package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/outboxd/outboxd/internal/event"
)

// rawConsumeFetch is how many messages the raw consume loop asks JetStream
// for at a time.
const rawConsumeFetch = 100

// rawConsume is the broker's side of the worker's drain ceilings: the same
// backlog, published into a fresh stream, read by a raw nats.go loop on
// consumers durable pull consumers (one per handler), rawConsumeFetch
// messages a fetch, each message acked as the worker acks it (no wait for
// the server's answer), with no database and no decoding. It returns
// users/s: every consumer done with every message.
func (e *env) rawConsume(ctx context.Context, users []workerUser, consumers int) (float64, error) {
	if err := e.publishBacklog(ctx, users); err != nil {
		return 0, err
	}
	nc, err := nats.Connect(e.natsURL, nats.Name("outboxd bench raw consume"))
	if err != nil {
		return 0, fmt.Errorf("raw consume loop: connect NATS: %w", err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		return 0, fmt.Errorf("raw consume loop: jetstream: %w", err)
	}
	var (
		done  atomic.Int64 // messages acked by both consumers together
		wg    sync.WaitGroup
		errs  = make([]error, consumers)
		total = int64(consumers * len(users))
	)
	label := fmt.Sprintf("worker: raw consume loop, %d durable pull consumers, fetches of %d", consumers, rawConsumeFetch)
	stopProgress := progress(e.cfg.Progress, label, total, &done)
	start := time.Now()
	for c := range consumers {
		wg.Go(func() {
			errs[c] = consumeAll(ctx, js, fmt.Sprintf("bench-raw-%d-of-%d", c, consumers), len(users), &done)
		})
	}
	wg.Wait()
	took := time.Since(start)
	stopProgress()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("raw consume loop: %w", err)
	}
	return float64(len(users)) / took.Seconds(), nil
}

// consumeAll reads n messages of user.created on a durable pull consumer
// of its own, acking each.
func consumeAll(ctx context.Context, js nats.JetStreamContext, durable string, n int, done *atomic.Int64) error {
	sub, err := js.PullSubscribe(event.TopicUserCreated, durable, nats.ManualAck(), nats.Context(ctx))
	if err != nil {
		return fmt.Errorf("consumer %s: %w", durable, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	for got := 0; got < n; {
		msgs, err := sub.Fetch(min(rawConsumeFetch, n-got), nats.MaxWait(5*time.Second))
		if err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("consumer %s: fetch after %d messages: %w", durable, got, err)
		}
		for _, m := range msgs {
			if err := m.Ack(); err != nil {
				return fmt.Errorf("consumer %s: ack: %w", durable, err)
			}
		}
		got += len(msgs)
		done.Add(int64(len(msgs)))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}
