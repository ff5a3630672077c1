package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
)

// TestNestJSKafkaCollisionFailsInOneLine: with BROKER=kafka on the same
// brokers, outboxd's topic user.created is there, and the default mapping's
// user_created would collide with it: the worker stops at start, before
// connecting to Kafka, and says which mapping to use.
func TestNestJSKafkaCollisionFailsInOneLine(t *testing.T) {
	t.Parallel()
	code, _, errOut := run(context.Background(), "worker", "--handlers", "nestjs",
		"--broker", "kafka", "--broker-url", "127.0.0.1:1", "--nestjs-broker", "kafka", "--nestjs-url", "127.0.0.1:1",
		"--database-url", pgtest.NewDatabase(t))
	require.Equal(t, 1, code, errOut)
	require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
	require.Contains(t, errOut, "NESTJS_EVENTS=user.created=user_created")
	require.Contains(t, errOut, "map user.created=user-created instead and listen with @EventPattern('user-created')")
}

// TestWorkerSpeaksNestJSOverNATS runs `outboxd relay` and `outboxd worker
// --handlers profile,nestjs` with NESTJS_BROKER=nats: a user.created in the
// outbox reaches core NATS subject user_created as a NestJS event, and a
// NestJS request for an unknown user on {"cmd":"get_user_by_id"} gets its
// err reply.
func TestWorkerSpeaksNestJSOverNATS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Connect(t, dsn)
	natsURL, stopNATS, err := broker.StartEmbeddedNATS(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(stopNATS)
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	events, err := nc.SubscribeSync("user_created")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	brokerArgs := []string{"--database-url", dsn, "--broker", "nats", "--broker-url", natsURL}
	start(t, append([]string{"relay", "--admin-addr", freeAddr(t)}, brokerArgs...)...)
	start(t, append([]string{"worker", "--admin-addr", freeAddr(t), "--handlers", "profile,nestjs",
		"--nestjs-broker", "nats", "--nestjs-url", natsURL}, brokerArgs...)...)

	userID := uuid.New()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO users (id, email, name, password_hash) VALUES ($1, 'ann@example.com', 'Ann', 'x')`, userID)
	require.NoError(t, err)
	payload := `{"user_id":"` + userID.String() + `","email":"ann@example.com","name":"Ann","created_at":"2026-01-02T03:04:05Z"}`
	require.NoError(t, outbox.EnqueueTx(ctx, tx, outbox.Message{Topic: "user.created", Key: userID.String(), Payload: []byte(payload)}))
	require.NoError(t, tx.Commit(ctx))

	msg, err := events.NextMsg(20 * time.Second)
	require.NoError(t, err, "the worker delivers the event")
	require.JSONEq(t, `{"pattern":"user_created","data":`+payload+`}`, string(msg.Data))

	request := []byte(`{"pattern":{"cmd":"get_user_by_id"},"data":{"userId":"` + uuid.NewString() + `"},"id":"r1"}`)
	var reply *nats.Msg
	require.Eventually(t, func() bool {
		reply, err = nc.Request(`{"cmd":"get_user_by_id"}`, request, time.Second)
		return err == nil
	}, 20*time.Second, 50*time.Millisecond, "the profile service answers NestJS requests")
	require.JSONEq(t, `{"err":{"status":"error","message":"user not found","code":"not_found"},"isDisposed":true,"id":"r1"}`, string(reply.Data))
}
