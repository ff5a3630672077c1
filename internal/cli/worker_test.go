package cli_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/deadletter"
	"github.com/outboxd/outboxd/internal/pgtest"
)

func TestWorkerWithoutSMTPAddrFailsFastInOneLine(t *testing.T) {
	t.Parallel()
	code, _, errOut := run(context.Background(), "worker", "--smtp-addr=", "--mail-from=a@example.com",
		"--database-url", "postgres://nobody@127.0.0.1:1/none")
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
	require.Contains(t, errOut, "SMTP_ADDR")
	require.NotContains(t, errOut, "127.0.0.1:1", "fails before connecting anywhere")

	// Without the email handler, no mail server is needed: the worker gets as
	// far as the database.
	code, _, errOut = run(context.Background(), "worker", "--smtp-addr=", "--handlers", "profile,audit",
		"--database-url", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "127.0.0.1:1")
}

func TestDLQListReplayPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Connect(t, dsn)
	msgID := uuid.New()
	id, err := deadletter.Add(ctx, pool, deadletter.DeadLetter{
		Handler: "profile", MessageID: msgID, Topic: "user.created",
		Payload: []byte(`{"user_id":"x"}`), Metadata: map[string]string{"key": "k1"},
		Error: "insert profile: no such user", Attempts: 6,
	})
	require.NoError(t, err)
	other, err := deadletter.Add(ctx, pool, deadletter.DeadLetter{
		Handler: "audit", MessageID: uuid.New(), Topic: "user.created", Payload: []byte(`{}`), Error: "boom", Attempts: 1,
	})
	require.NoError(t, err)

	code, out, errOut := run(ctx, "dlq", "list", "--json", "--database-url", dsn)
	require.Equal(t, 0, code, errOut)
	var listing struct {
		Handlers []deadletter.DeadLetter
	}
	require.NoError(t, json.Unmarshal([]byte(out), &listing))
	require.Len(t, listing.Handlers, 2)

	code, out, errOut = run(ctx, "dlq", "--database-url", dsn)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "no such user")
	require.Contains(t, out, msgID.String())

	code, out, errOut = run(ctx, "dlq", "replay", "--database-url", dsn, itoa(id))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "replayed 1")
	var topic string
	require.NoError(t, pool.QueryRow(ctx, `SELECT topic FROM outbox WHERE message_id = $1`, msgID).Scan(&topic),
		"the replayed message is back in the outbox with its message id")
	require.Equal(t, "user.created", topic)

	code, _, errOut = run(ctx, "dlq", "purge", "--database-url", dsn)
	require.Equal(t, 1, code, "purge needs ids or --all")
	require.Contains(t, errOut, "--all")
	code, out, errOut = run(ctx, "dlq", "purge", "--database-url", dsn, itoa(other))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "purged 1")
	var left int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM dead_letters`).Scan(&left))
	require.Zero(t, left)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestBadSettingsFailAtStartUp: a retention that would prune rows still
// needed, a profile timeout the request's own timeout would cut short, an
// unknown mode, or NestJS settings that cannot work (the nestjs handler
// without a transport, RabbitMQ without the consumers' queue or with the
// requests on it, a malformed mapping) fails in one line naming the
// variable, before anything connects.
func TestBadSettingsFailAtStartUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"api", "--idempotency-key-ttl", "30m"}, "IDEMPOTENCY_KEY_TTL=30m0s: must be 0 (keep forever) or at least 1h0m0s"},
		{[]string{"worker", "--handlers", "profile", "--inbox-retention", "10m"}, "INBOX_RETENTION=10m0s: must be 0 (keep forever) or at least 1h0m0s"},
		{[]string{"dev", "--inbox-retention", "1s"}, "INBOX_RETENTION=1s"},
		{[]string{"worker", "--handlers", "profile", "--worker-concurrency", "0"}, "WORKER_CONCURRENCY=0: must be at least 1"},
		{[]string{"worker", "--handlers", "profile", "--worker-batch-size", "0"}, "WORKER_BATCH_SIZE=0: must be at least 1"},
		{[]string{"worker", "--handlers", "profile", "--worker-batch-wait=-1ms"}, "WORKER_BATCH_WAIT=-1ms: must not be negative"},
		{[]string{"api", "--profile-request-timeout", "10s", "--request-timeout", "5s"}, "PROFILE_REQUEST_TIMEOUT=10s must be shorter than REQUEST_TIMEOUT=5s"},
		{[]string{"relay", "--capture", "foo"}, `RELAY_CAPTURE=foo: unknown capture mode "foo": use poll, wal or auto`},
		{[]string{"dev", "--capture", "WAL"}, "RELAY_CAPTURE=WAL"},
		{[]string{"api", "--outbox-notify", "maybe"}, "OUTBOX_NOTIFY=maybe: use on or off"},
		{[]string{"dev", "--outbox-notify", "no"}, "OUTBOX_NOTIFY=no: use on or off"},
		{[]string{"worker", "--handlers", "profile,nestjs"}, "--handlers names nestjs: set NESTJS_BROKER (nats, amqp, redis or kafka)"},
		{[]string{"worker", "--handlers", "nestjs", "--nestjs-broker", "grpc"}, `NESTJS_BROKER=grpc: unknown NestJS transport "grpc"`},
		{[]string{"worker", "--handlers", "nestjs", "--nestjs-broker", "amqp"}, "NESTJS_QUEUE: the nestjs handler on NESTJS_BROKER=amqp needs the consumers' queue"},
		{[]string{"worker", "--handlers", "nestjs", "--nestjs-broker", "amqp", "--nestjs-queue", "q", "--nestjs-request-queue", "q"}, "NESTJS_REQUEST_QUEUE=q is NESTJS_QUEUE"},
		{[]string{"dev", "--handlers", "nestjs", "--nestjs-broker", "nats", "--nestjs-events", "user.created"}, `NESTJS_EVENTS=user.created: "user.created": want topic=pattern`},
	} {
		code, _, errOut := run(context.Background(), append(tc.args, "--database-url", "postgres://nobody@127.0.0.1:1/none")...)
		require.Equal(t, 2, code, "%v: %s", tc.args, errOut)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
		require.Contains(t, errOut, tc.want)
		require.NotContains(t, errOut, "127.0.0.1:1", "fails before connecting anywhere")
	}
}
