package profilerpc_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/requestreply"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/profile"
	"github.com/outboxd/outboxd/internal/profilerpc"
)

func TestRequestReply(t *testing.T) {
	t.Parallel()
	for _, bc := range brokers() {
		t.Run(string(bc.kind), func(t *testing.T) {
			t.Parallel()
			t.Run("TwoClientsGetTheirOwnRepliesUnderLoad", func(t *testing.T) {
				t.Parallel()
				testTwoClients(t, bc)
			})
			t.Run("LateReplyIsDroppedWithoutErrorOrLeak", func(t *testing.T) {
				t.Parallel()
				testLateReply(t, bc)
			})
			t.Run("ServiceAnswersOnlyToReplyTopics", func(t *testing.T) {
				t.Parallel()
				testForeignReplyTopic(t, bc)
			})
			t.Run("FailedLookupIsAServiceError", func(t *testing.T) {
				t.Parallel()
				testFailedLookup(t, bc)
			})
		})
	}
}

// testTwoClients sends 200 requests at once for 200 users from two Clients
// (two API instances): each request gets its own user's profile, so replies
// cross neither instances nor requests.
func testTwoClients(t *testing.T, bc brokerCase) {
	const perClient = 100
	b := setup(t, bc)
	b.startServer(t, profilerpc.ServerConfig{})
	clients := []*profilerpc.Client{
		b.startClient(t, profilerpc.ClientConfig{Timeout: 10 * time.Second}),
		b.startClient(t, profilerpc.ClientConfig{Timeout: 10 * time.Second}),
	}
	require.NotEqual(t, clients[0].ReplyTopic(), clients[1].ReplyTopic())

	want := make([]profile.Profile, 2*perClient)
	for i := range want {
		want[i] = insertProfile(t, b.pool, fmt.Sprintf("user %d", i))
	}
	got := make([]profile.Profile, len(want))
	errs := make([]error, len(want))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range want {
		wg.Go(func() {
			<-start
			got[i], errs[i] = clients[i%2].Profile(context.Background(), want[i].UserID)
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d concurrent requests answered in %s", len(want), time.Since(began).Round(time.Millisecond))
	for i := range want {
		require.NoError(t, errs[i], "request %d", i)
		requireSameProfile(t, want[i], got[i])
	}
	// A request leaves the reply mux when its context ends, in a goroutine
	// of context.AfterFunc's: soon after its Profile call returned.
	for _, c := range clients {
		require.Eventually(t, func() bool { return c.InFlight() == 0 }, 5*time.Second, time.Millisecond, "no request left waiting")
	}
}

// testLateReply answers a request only after its Client gave up: the reply
// is dropped and counted, nothing is logged at error level, no request is
// left waiting, and the Client goes on answering.
func testLateReply(t *testing.T, bc brokerCase) {
	const timeout = 300 * time.Millisecond
	b := setup(t, bc)
	ctx := context.Background()
	service, err := profilerpc.DialRaw(ctx, b.bcfg, true)
	require.NoError(t, err)
	t.Cleanup(func() { _ = service.Close() })
	requests, err := service.Subscribe(ctx, b.topic)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	c := b.startClient(t, profilerpc.ClientConfig{Timeout: timeout, Registerer: reg})
	p := insertProfile(t, b.pool, "Late")

	began := time.Now()
	_, err = c.Profile(ctx, p.UserID)
	elapsed := time.Since(began)
	require.ErrorIs(t, err, profile.ErrTimeout)
	require.GreaterOrEqual(t, elapsed, timeout)

	req := nextMessage(t, requests)
	req.Ack()
	require.Equal(t, c.ReplyTopic(), req.Metadata.Get(profilerpc.MetadataReplyTo))
	ms, err := strconv.Atoi(req.Metadata.Get(profilerpc.MetadataTimeoutMS))
	require.NoError(t, err)
	require.Positive(t, ms)
	require.LessOrEqual(t, int64(ms), timeout.Milliseconds(), "the request says how long its sender still waits")
	require.NoError(t, service.Reply(req, profilerpc.ProfileReply{Found: true, Profile: &p}))
	require.Eventually(t, func() bool {
		return counterValue(t, reg, "outboxd_profile_client_late_replies_total") == 1
	}, 10*time.Second, 5*time.Millisecond, "the late reply is counted as dropped")
	require.Zero(t, c.InFlight())

	// The Client still works: a reply in time is delivered.
	type result struct {
		p   profile.Profile
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := c.Profile(ctx, p.UserID)
		done <- result{p, err}
	}()
	req = nextMessage(t, requests)
	req.Ack()
	require.NoError(t, service.Reply(req, profilerpc.ProfileReply{Found: true, Profile: &p}))
	r := <-done
	require.NoError(t, r.err)
	requireSameProfile(t, p, r.p)

	require.Equal(t, float64(1), counterValue(t, reg, "outboxd_profile_client_late_replies_total"))
	requireNoErrorLogs(t, b.logs)
}

// testForeignReplyTopic sends the service a request whose reply_to is an
// ordinary topic, then a valid one, over one connection: once the valid one
// is answered the first was handled, and nothing was published to the
// ordinary topic.
func testForeignReplyTopic(t *testing.T, bc brokerCase) {
	b := setup(t, bc)
	// One at a time, so that the requests are handled in the order sent.
	b.startServer(t, profilerpc.ServerConfig{Concurrency: 1})
	p := insertProfile(t, b.pool, "Target")
	ctx := context.Background()
	attacker, err := profilerpc.DialRaw(ctx, b.bcfg, false)
	require.NoError(t, err)
	t.Cleanup(func() { _ = attacker.Close() })
	victimTopic := "victim." + randomHex(6)
	replyTopic := profilerpc.ReplyTopicPrefix + randomHex(16)
	victim, err := attacker.Subscribe(ctx, victimTopic)
	require.NoError(t, err)
	replies, err := attacker.Subscribe(ctx, replyTopic)
	require.NoError(t, err)

	require.NoError(t, attacker.Publish(b.topic, rawRequest(t, p.UserID, victimTopic), rawRequest(t, p.UserID, replyTopic)))
	reply := nextMessage(t, replies)
	reply.Ack()
	require.Contains(t, string(reply.Payload), p.DisplayName)
	select {
	case msg := <-victim:
		t.Fatalf("the service published to %s: %s", victimTopic, msg.Payload)
	default:
	}
	require.Len(t, b.logs.Records(t, "no valid reply topic"), 1)
}

// testFailedLookup answers a request with the database's error: the Client
// gets ErrServiceFailed at once rather than a timeout.
func testFailedLookup(t *testing.T, bc brokerCase) {
	b := setup(t, bc)
	b.startServer(t, profilerpc.ServerConfig{})
	c := b.startClient(t, profilerpc.ClientConfig{Timeout: 10 * time.Second})
	_, err := b.pool.Exec(context.Background(), `ALTER TABLE profiles RENAME TO profiles_gone`)
	require.NoError(t, err)

	began := time.Now()
	_, err = c.Profile(context.Background(), uuid.New())
	require.ErrorIs(t, err, profile.ErrServiceFailed)
	require.Less(t, time.Since(began), 5*time.Second, "answered, not timed out")
	require.Len(t, b.logs.Records(t, "profile lookup failed"), 1)
}

// TestRequestsExpireInTheRabbitMQQueue checks that a request nobody takes
// leaves RabbitMQ's queue when its sender stops waiting, so a service that
// starts later never works on it.
func TestRequestsExpireInTheRabbitMQQueue(t *testing.T) {
	t.Parallel()
	b := setup(t, brokers()[1])
	ctx := context.Background()
	// Declare the request queue, as a service that ran before would have.
	service, err := profilerpc.DialRaw(ctx, b.bcfg, true)
	require.NoError(t, err)
	subCtx, cancel := context.WithCancel(ctx)
	_, err = service.Subscribe(subCtx, b.topic)
	require.NoError(t, err)
	cancel()
	require.NoError(t, service.Close())

	c := b.startClient(t, profilerpc.ClientConfig{Timeout: time.Second})
	done := make(chan error, 1)
	go func() {
		_, err := c.Profile(ctx, uuid.New())
		done <- err
	}()
	require.Eventually(t, func() bool { return queueLength(t, b.topic) == 1 },
		900*time.Millisecond, 10*time.Millisecond, "the request waits in the queue")
	require.ErrorIs(t, <-done, profile.ErrTimeout)
	require.Eventually(t, func() bool { return queueLength(t, b.topic) == 0 },
		5*time.Second, 10*time.Millisecond, "the request expired from the queue")
}

// TestClientConnectsOnceTheBrokerIsUp starts a Client before its broker, as
// an API does during a broker outage: it answers ErrUnavailable at once
// meanwhile, and works once the broker is there.
func TestClientConnectsOnceTheBrokerIsUp(t *testing.T) {
	t.Parallel()
	port, release := holdPort(t)
	bc := brokerCase{broker.KindNATS, func(_ testing.TB, logger *slog.Logger) broker.Config {
		return broker.Config{Kind: broker.KindNATS, URL: "nats://127.0.0.1:" + strconv.Itoa(port), Logger: logger}
	}}
	b := setup(t, bc)
	c, stop := b.runClient(t, profilerpc.ClientConfig{})
	t.Cleanup(func() { require.NoError(t, stop()) })

	began := time.Now()
	_, err := c.Profile(context.Background(), uuid.New())
	require.ErrorIs(t, err, profile.ErrUnavailable)
	require.Less(t, time.Since(began), profilerpc.TimeoutDefault/2, "fails fast while not connected, without waiting for a reply")
	require.Error(t, c.Ready(context.Background()))
	require.Eventually(t, func() bool {
		return len(b.logs.Records(t, "cannot reach the broker")) > 0
	}, 10*time.Second, 10*time.Millisecond, "the failed attempt is logged")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	release()
	_, stopNATS, err := broker.StartEmbeddedNATSOn(ctx, t.TempDir(), port)
	require.NoError(t, err)
	t.Cleanup(stopNATS)
	b.startServer(t, profilerpc.ServerConfig{})
	p := insertProfile(t, b.pool, "Patient")
	require.Eventually(t, func() bool { return c.Ready(context.Background()) == nil },
		15*time.Second, 10*time.Millisecond, "the client connects once NATS is up")
	got, err := c.Profile(context.Background(), p.UserID)
	require.NoError(t, err)
	requireSameProfile(t, p, got)
}

// TestClientStopsAfterRequestsInFlight stops a Client while a request
// waits: the request still ends its own way (here a timeout, as no service
// runs), then Run returns and later requests are refused.
func TestClientStopsAfterRequestsInFlight(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	b := setup(t, brokers()[0])
	c, stop := b.runClient(t, profilerpc.ClientConfig{Timeout: timeout})
	t.Cleanup(func() { _ = stop() })
	require.Eventually(t, func() bool { return c.Ready(context.Background()) == nil }, 10*time.Second, 5*time.Millisecond)

	done := make(chan error, 1)
	started := time.Now()
	go func() {
		_, err := c.Profile(context.Background(), uuid.New())
		done <- err
	}()
	require.Eventually(t, func() bool { return c.InFlight() == 1 }, timeout/2, time.Millisecond)
	require.NoError(t, stop())
	// The request could only end at its deadline, as no service runs.
	require.GreaterOrEqual(t, time.Since(started), timeout, "Run waited for the request in flight")
	require.ErrorIs(t, <-done, profile.ErrTimeout, "the request ended on its own terms")
	_, err := c.Profile(context.Background(), uuid.New())
	require.ErrorIs(t, err, profile.ErrUnavailable)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	nats := broker.Config{Kind: broker.KindNATS}
	t.Run("UnsupportedBrokers", func(t *testing.T) {
		t.Parallel()
		for _, kind := range []broker.Kind{broker.KindRedis, broker.KindKafka, broker.KindPostgres} {
			require.False(t, profilerpc.Supported(kind))
			_, err := profilerpc.NewClient(broker.Config{Kind: kind}, profilerpc.ClientConfig{})
			require.ErrorIs(t, err, profilerpc.ErrUnsupportedBroker)
			_, err = profilerpc.NewServer(lazyPool(t), broker.Config{Kind: kind}, profilerpc.ServerConfig{})
			require.ErrorIs(t, err, profilerpc.ErrUnsupportedBroker)
		}
		require.True(t, profilerpc.Supported(broker.KindNATS))
		require.True(t, profilerpc.Supported(broker.KindAMQP))
	})
	t.Run("InvalidFieldsAreNamed", func(t *testing.T) {
		t.Parallel()
		_, err := profilerpc.NewClient(nats, profilerpc.ClientConfig{Timeout: -time.Second, RequestTopic: "profile.reply.x"})
		require.ErrorContains(t, err, "ClientConfig.Timeout")
		require.ErrorContains(t, err, "ClientConfig.RequestTopic")
		_, err = profilerpc.NewServer(lazyPool(t), nats, profilerpc.ServerConfig{Concurrency: -1, RequestTopic: "bad topic"})
		require.ErrorContains(t, err, "ServerConfig.Concurrency")
		require.ErrorContains(t, err, "ServerConfig.RequestTopic")
		_, err = profilerpc.NewServer(nil, nats, profilerpc.ServerConfig{})
		require.ErrorContains(t, err, "pool is nil")
	})
	t.Run("ProfileBeforeRunIsUnavailable", func(t *testing.T) {
		t.Parallel()
		c, err := profilerpc.NewClient(nats, profilerpc.ClientConfig{})
		require.NoError(t, err)
		_, err = c.Profile(context.Background(), uuid.New())
		require.ErrorIs(t, err, profile.ErrUnavailable)
	})
}

// rawRequest is a profile.get request for id as a Client sends it, with
// reply_to set to replyTo.
func rawRequest(t *testing.T, id uuid.UUID, replyTo string) *message.Message {
	t.Helper()
	msg := message.NewMessage(uuid.NewString(), fmt.Appendf(nil, `{"user_id":%q}`, id))
	msg.Metadata.Set("name", profilerpc.CommandName)
	msg.Metadata.Set(requestreply.OperationIDMetadataKey, uuid.NewString())
	msg.Metadata.Set(profilerpc.MetadataReplyTo, replyTo)
	msg.Metadata.Set(profilerpc.MetadataTimeoutMS, "5000")
	return msg
}

func nextMessage(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-ch:
		require.True(t, ok, "subscription closed")
		return msg
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return nil
	}
}

// counterValue is the value of the counter name in reg, 0 when absent.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			var sum float64
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}

// queueLength is the number of messages in RabbitMQ's queue name.
func queueLength(t *testing.T, name string) int {
	t.Helper()
	conn, err := amqp091.Dial(amqpURL())
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	require.NoError(t, err)
	return q.Messages
}

// holdPort keeps a loopback port busy with a listener that hangs up on
// every connection, as a host whose broker is down does, so that no other
// test's server takes the port meanwhile; release frees it.
func holdPort(t *testing.T) (port int, release func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = ln.Close()
			<-done
		})
	}
	t.Cleanup(release)
	return ln.Addr().(*net.TCPAddr).Port, release
}

// lazyPool is a pool that never connects: enough for constructors that
// only keep it.
func lazyPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}
