package nestjs_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/nestjs"
)

// rmqURL is the RabbitMQ .ci/run starts, with its stock guest account.
const rmqURL = "amqp://guest:guest@127.0.0.1:5672/"

// rmqQueues returns an event queue and a request queue for t alone,
// deleted when t ends.
func rmqQueues(t *testing.T) (events, requests string) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	events, requests = "notifications_"+suffix, "profiles_"+suffix
	t.Cleanup(func() {
		conn, err := amqp091.Dial(rmqURL)
		if err != nil {
			t.Errorf("delete test queues: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("delete test queues: %v", err)
			return
		}
		for _, q := range []string{events, requests} {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				t.Errorf("delete queue %s: %v", q, err)
			}
		}
	})
	return events, requests
}

func rmqEnv(events, requests string) []string {
	return []string{"NESTJS_BROKER=amqp", "NESTJS_URL=" + rmqURL, "NESTJS_QUEUE=" + events, "NESTJS_REQUEST_QUEUE=" + requests}
}

// TestNestJSOverRabbitMQ: over RabbitMQ, a signup reaches a NestJS
// @EventPattern('user_created') handler through the service's queue, and a
// NestJS client's send({ cmd: 'get_user_by_id' }) on a queue of its own
// gets the profile or an error it can read.
func TestNestJSOverRabbitMQ(t *testing.T) {
	t.Parallel()
	events, requests := rmqQueues(t)
	s := startStack(t, embeddedNATS(t), nestjs.Config{Transport: nestjs.TransportRMQ, URL: rmqURL, Queue: events, RequestQueue: requests})
	checkTransport(t, s, rmqEnv(events, requests), "cy@example.com", "Cy")
}

// TestRabbitMQConsumerDownLosesNothing: the NestJS service is down for 5 s
// while users sign up; the events wait in its durable queue (the worker
// counts each handled only once RabbitMQ confirmed it) and all arrive when
// it is back.
func TestRabbitMQConsumerDownLosesNothing(t *testing.T) {
	t.Parallel()
	const down, signups = 5 * time.Second, 5
	events, requests := rmqQueues(t)
	s := startStack(t, embeddedNATS(t), nestjs.Config{Transport: nestjs.TransportRMQ, URL: rmqURL, Queue: events, RequestQueue: requests})
	env := rmqEnv(events, requests)
	consumer := startNode(t, "consumer", env...)
	first := s.signup(t, "first@example.com", "First")
	waitForEvent(t, consumer, first)

	consumer.kill()
	stopped := time.Now()
	var users []user
	for i := range signups {
		users = append(users, s.signup(t, fmt.Sprintf("down%d@example.com", i), fmt.Sprintf("Down %d", i)))
	}
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, s.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM inbox WHERE handler = 'nestjs'`).Scan(&n))
		return n == 1+signups
	}, eventTimeout, 10*time.Millisecond, "the worker delivered every event while the consumer was down")
	// Keep it down for the whole outage, then bring it back.
	time.Sleep(time.Until(stopped.Add(down)))

	consumer = startNode(t, "consumer", env...)
	want := map[string]user{}
	for _, u := range users {
		want[u.ID] = u
	}
	for len(want) > 0 {
		consumer.next(t, eventTimeout, fmt.Sprintf("to receive the %d events sent while it was down", len(want)), func(l nodeLine) bool {
			var ev userCreated
			if l.Event != "user_created" || json.Unmarshal(l.Data, &ev) != nil {
				return false
			}
			u, ok := want[ev.UserID]
			if ok {
				require.Equal(t, u.Email, ev.Email)
				require.Equal(t, u.Name, ev.Name)
				delete(want, ev.UserID)
			}
			return ok
		})
	}
}

// TestRabbitMQEmitterConfirmsAndRedeclares: an emitted event is in the
// queue when Emit returns; with the queue deleted under it, Emit fails
// (RabbitMQ returned the mandatory message) instead of counting the event
// delivered, and the retry declares the queue again and delivers it.
func TestRabbitMQEmitterConfirmsAndRedeclares(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	events, _ := rmqQueues(t)
	em, err := nestjs.NewEmitter(nestjs.Config{Transport: nestjs.TransportRMQ, URL: rmqURL, Queue: events})
	require.NoError(t, err)
	require.NoError(t, em.AddHandlers(ctx, nil))
	t.Cleanup(func() { require.NoError(t, em.Close()) })

	conn, err := amqp091.Dial(rmqURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	depth := func() int {
		q, err := ch.QueueDeclarePassive(events, true, false, false, false, nil)
		require.NoError(t, err)
		return q.Messages
	}

	msg := message.NewMessage(uuid.NewString(), []byte(`{"user_id":"u1"}`))
	require.NoError(t, em.Emit(ctx, "user.created", msg))
	require.Equal(t, 1, depth(), "confirmed means queued")
	got, ok, err := ch.Get(events, true)
	require.NoError(t, err)
	require.True(t, ok)
	require.JSONEq(t, `{"pattern":"user_created","data":{"user_id":"u1"}}`, string(got.Body))
	require.Equal(t, uint8(amqp091.Persistent), got.DeliveryMode)
	require.Equal(t, msg.UUID, got.MessageId)

	_, err = ch.QueueDelete(events, false, false, false)
	require.NoError(t, err)
	require.ErrorContains(t, em.Emit(ctx, "user.created", msg), "RabbitMQ returned the event: no queue "+events+" took it")
	require.NoError(t, em.Emit(ctx, "user.created", msg), "the retry declares the queue again")
	require.Equal(t, 1, depth())
}
