package worker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/worker"
)

// fakeEmitter records what the nestjs handler emits; its first failures
// calls fail.
type fakeEmitter struct {
	mu       sync.Mutex
	failures int
	calls    int
	emitted  []string // message UUIDs
}

func (e *fakeEmitter) Topics() []string { return []string{event.TopicUserCreated} }

func (e *fakeEmitter) Emit(_ context.Context, topic string, msg *message.Message) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls++
	if e.calls <= e.failures {
		return errors.New("transport away")
	}
	e.emitted = append(e.emitted, msg.UUID)
	return nil
}

func (e *fakeEmitter) state() (calls int, emitted []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls, append([]string(nil), e.emitted...)
}

// TestNestJSHandlerRetriesThenSkipsRedeliveries: a failing delivery is
// retried until the transport takes it, recorded in the inbox, and a
// redelivery of the same message is skipped as a duplicate.
func TestNestJSHandlerRetriesThenSkipsRedeliveries(t *testing.T) {
	t.Parallel()
	em := &fakeEmitter{failures: 2}
	b := setup(t, setupOpts{cfg: worker.Config{
		Handlers: []string{worker.HandlerNestJS}, NestJS: em,
		RetryInitialInterval: time.Millisecond, RetryMaxInterval: time.Millisecond,
	}})
	b.start(t)
	ev := newEvent("Ann")
	id := uuid.New()
	b.publish(t, newMessage(t, id, ev, ""))
	waitCount(t, b.pool, 1, 10*time.Second, `SELECT count(*) FROM inbox WHERE handler = 'nestjs' AND message_id = $1`, id)
	calls, emitted := em.state()
	require.Equal(t, 3, calls, "two failed attempts, then the delivery")
	require.Equal(t, []string{id.String()}, emitted)
	require.Equal(t, 2.0, metric(t, b.reg, "outboxd_worker_messages_retried_total", worker.HandlerNestJS))

	b.publish(t, newMessage(t, id, ev, ""))
	require.True(t, assertEventually(10*time.Second, func() bool {
		return metric(t, b.reg, "outboxd_worker_messages_duplicate_total", worker.HandlerNestJS) == 1
	}), "the redelivery is recognised")
	_, emitted = em.state()
	require.Len(t, emitted, 1, "delivered once")
}

// TestNestJSHandlerDeadLettersPoison: a payload that is no user.created is
// dead-lettered at once and never emitted.
func TestNestJSHandlerDeadLettersPoison(t *testing.T) {
	t.Parallel()
	em := &fakeEmitter{}
	b := setup(t, setupOpts{cfg: worker.Config{Handlers: []string{worker.HandlerNestJS}, NestJS: em}})
	b.start(t)
	msg := message.NewMessage(uuid.NewString(), []byte(`{"user_id":`))
	b.publish(t, msg)
	waitCount(t, b.pool, 1, 10*time.Second, `SELECT count(*) FROM dead_letters WHERE handler = 'nestjs'`)
	calls, _ := em.state()
	require.Zero(t, calls)
}

// TestNestJSHandlerNeedsAnEmitter: naming the handler without a transport
// fails New, naming the field.
func TestNestJSHandlerNeedsAnEmitter(t *testing.T) {
	t.Parallel()
	_, err := worker.New(nil, nil, nil, worker.Config{Handlers: []string{worker.HandlerNestJS}})
	require.ErrorContains(t, err, "Config.NestJS: the nestjs handler needs a NestJS transport")
}
