package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/deadletter"
	"github.com/outboxd/outboxd/internal/mail/mailtest"
	"github.com/outboxd/outboxd/internal/worker"
)

// burst is a transport that hands over many messages at once, as a broker
// with several subscribers or a prefetch does: every handler's subscription
// gets every message published, without waiting for acks, and a nacked
// message comes again.
type burst struct {
	mu   sync.Mutex
	subs []*burstSub
	wg   sync.WaitGroup
}

// burstSub is one subscription; it closes when the router's context ends.
type burstSub struct {
	mu     sync.Mutex
	ch     chan *message.Message
	closed bool
}

func (s *burstSub) send(m *message.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.ch <- m // buffered far beyond what the tests publish
	return true
}

func (b *burst) factory(context.Context, string) (message.Subscriber, error) { return b, nil }

func (b *burst) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	s := &burstSub{ch: make(chan *message.Message, 1024)}
	b.mu.Lock()
	b.subs = append(b.subs, s)
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		<-ctx.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		close(s.ch)
	}()
	return s.ch, nil
}

func (b *burst) Close() error { return nil }

func (b *burst) ready(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs) == n
}

// publish hands every subscription its own copy of msgs at once.
func (b *burst) publish(ctx context.Context, msgs ...*message.Message) {
	b.mu.Lock()
	subs := append([]*burstSub(nil), b.subs...)
	b.mu.Unlock()
	for _, ch := range subs {
		for _, m := range msgs {
			b.deliver(ctx, ch, m)
		}
	}
}

func (b *burst) deliver(ctx context.Context, ch *burstSub, m *message.Message) {
	c := m.Copy()
	c.SetContext(ctx)
	if !ch.send(c) {
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		select {
		case <-c.Acked():
		case <-c.Nacked():
			b.deliver(ctx, ch, m)
		case <-ctx.Done():
		}
	}()
}

// startBurst runs a worker set up with opts on a burst transport until the
// test ends, once its handlers have subscribed.
func startBurst(t *testing.T, opts setupOpts, handlers int) (*testBundle, *burst, context.Context) {
	t.Helper()
	tr := &burst{}
	opts.subscribe = tr.factory
	b := setup(t, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.worker.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		tr.wg.Wait()
	})
	require.Eventually(t, func() bool { return tr.ready(handlers) && b.worker.Ready(ctx) == nil }, 10*time.Second, 5*time.Millisecond)
	return b, tr, ctx
}

func TestPoisonMidBatchIsDeadLetteredAloneAndTheRestAppliedOnce(t *testing.T) {
	t.Parallel()
	cfg := fastRetries
	cfg.Handlers = []string{worker.HandlerProfile, worker.HandlerAudit}
	cfg.BatchWait = 50 * time.Millisecond // a generous wait: the test is about batches
	b, tr, ctx := startBurst(t, setupOpts{cfg: cfg}, 2)

	const n = 41
	var msgs []*message.Message
	var orphanID uuid.UUID
	for i := range n {
		ev := newEvent("User")
		id := uuid.New()
		if i == n/2 {
			orphanID = id // no users row: the profile's foreign key fails every attempt
		} else {
			insertUser(t, b.pool, ev)
		}
		msgs = append(msgs, newMessage(t, id, ev, ""))
	}
	tr.publish(ctx, msgs...)

	waitCount(t, b.pool, n-1, 10*time.Second, `SELECT count(*) FROM profiles`)
	waitCount(t, b.pool, n, 10*time.Second, `SELECT count(*) FROM audit_log`)
	require.True(t, assertEventually(10*time.Second, func() bool {
		return len(deadLetters(t, b, deadletter.Filter{})) == 1
	}))
	d := deadLetters(t, b, deadletter.Filter{})[0]
	require.Equal(t, worker.HandlerProfile, d.Handler)
	require.Equal(t, orphanID, d.MessageID)
	require.Equal(t, 3, d.Attempts, "retried per message: one attempt and MaxRetries retries")
	require.Equal(t, 1.0, metric(t, b.reg, "outboxd_worker_messages_dead_lettered_total", worker.HandlerProfile))
	require.Equal(t, 3.0, metric(t, b.reg, "outboxd_worker_messages_failed_total", worker.HandlerProfile), "only the poison message failed")

	require.Zero(t, count(t, b.pool, `SELECT count(*) FROM inbox WHERE handler = 'profile' AND message_id = $1`, orphanID))
	require.Equal(t, n-1, count(t, b.pool, `SELECT count(DISTINCT user_id) FROM profiles`))
	require.Equal(t, n, count(t, b.pool, `SELECT count(DISTINCT message_id) FROM audit_log`))
	// One transaction a message without batches; how many share one depends
	// on how the messages reach the batcher on a busy machine, so only
	// "fewer than one each" is asserted.
	require.Less(t, count(t, b.pool, `SELECT count(DISTINCT xmin::text) FROM inbox WHERE handler = 'audit'`), n,
		"the audit rows were written in batches, not a transaction each")
	batches := metric(t, b.reg, "outboxd_worker_batch_size", worker.HandlerAudit)
	require.Positive(t, batches)
	require.Less(t, batches, float64(n), "the batch-size histogram counts transactions, not messages")
}

func TestSameBatchDeliveredTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	cfg := fastRetries
	cfg.Handlers = []string{worker.HandlerProfile, worker.HandlerAudit}
	b, tr, ctx := startBurst(t, setupOpts{cfg: cfg}, 2)

	const n = 30
	var msgs []*message.Message
	for range n {
		ev := newEvent("User")
		insertUser(t, b.pool, ev)
		msgs = append(msgs, newMessage(t, uuid.New(), ev, ""))
	}
	tr.publish(ctx, msgs...)
	waitCount(t, b.pool, 2*n, 10*time.Second, `SELECT count(*) FROM inbox`)

	tr.publish(ctx, msgs...)
	require.True(t, assertEventually(10*time.Second, func() bool {
		return metric(t, b.reg, "outboxd_worker_messages_duplicate_total", worker.HandlerProfile) == n &&
			metric(t, b.reg, "outboxd_worker_messages_duplicate_total", worker.HandlerAudit) == n
	}), "every redelivered message is a duplicate")
	require.Equal(t, n, count(t, b.pool, `SELECT count(*) FROM profiles`))
	require.Equal(t, n, count(t, b.pool, `SELECT count(*) FROM audit_log`))
	require.Equal(t, 2*n, count(t, b.pool, `SELECT count(*) FROM inbox`))
	require.Empty(t, deadLetters(t, b, deadletter.Filter{}))
}

func TestIdleBatchDoesNotWait(t *testing.T) {
	t.Parallel()
	cfg := fastRetries
	cfg.Handlers = []string{worker.HandlerProfile}
	cfg.BatchWait = 10 * time.Second // a lone message must not wait for it
	b, tr, ctx := startBurst(t, setupOpts{cfg: cfg}, 1)

	ev := newEvent("Lone")
	insertUser(t, b.pool, ev)
	id := uuid.New()
	start := time.Now()
	tr.publish(ctx, newMessage(t, id, ev, ""))
	waitProcessed(t, b.pool, id, 1, 5*time.Second)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestSlowMailServerDoesNotSlowTheDatabaseHandlers(t *testing.T) {
	t.Parallel()
	b, tr, ctx := startBurst(t, setupOpts{cfg: fastRetries, smtp: mailtest.Options{Delay: time.Second}}, 3)

	const n = 20 // at 1 s a mail on 4 connections, the mails take at least 5 s
	var msgs []*message.Message
	for range n {
		ev := newEvent("User")
		insertUser(t, b.pool, ev)
		msgs = append(msgs, newMessage(t, uuid.New(), ev, ""))
	}
	start := time.Now()
	tr.publish(ctx, msgs...)
	waitCount(t, b.pool, n, 10*time.Second, `SELECT count(*) FROM profiles`)
	waitCount(t, b.pool, n, 10*time.Second, `SELECT count(*) FROM audit_log`)
	require.Less(t, time.Since(start), 3*time.Second, "profile and audit did not wait for the mails")
	require.Less(t, len(b.smtp.Received()), n, "the mails were still going out meanwhile")
	require.Len(t, b.smtp.WaitForCount(n, 30*time.Second), n)
}
