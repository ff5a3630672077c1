package profilerpc_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/profile"
	"github.com/outboxd/outboxd/internal/profilerpc"
	"github.com/outboxd/outboxd/internal/testlog"
)

func TestMain(m *testing.M) {
	pgtest.Main(m)
}

// brokerCase is a broker the tests run against.
type brokerCase struct {
	kind broker.Kind
	// config addresses a broker for t: an embedded NATS server of its own,
	// or the shared RabbitMQ, where each test uses its own request topic.
	config func(t testing.TB, logger *slog.Logger) broker.Config
}

func brokers() []brokerCase {
	return []brokerCase{
		{broker.KindNATS, func(t testing.TB, logger *slog.Logger) broker.Config {
			return broker.Config{Kind: broker.KindNATS, URL: startNATS(t), Logger: logger}
		}},
		{broker.KindAMQP, func(_ testing.TB, logger *slog.Logger) broker.Config {
			return broker.Config{Kind: broker.KindAMQP, URL: amqpURL(), Logger: logger}
		}},
	}
}

func amqpURL() string {
	if u := os.Getenv("OUTBOXD_TEST_AMQP_URL"); u != "" {
		return u
	}
	return broker.AMQPURLDefault
}

// startNATS runs an embedded JetStream server for t alone.
func startNATS(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url, stop, err := broker.StartEmbeddedNATS(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(stop)
	return url
}

// testBundle is one database and one broker with a request topic for t.
type testBundle struct {
	pool  *pgxpool.Pool
	bcfg  broker.Config
	topic string
	logs  *testlog.Buffer
}

func setup(t testing.TB, bc brokerCase) *testBundle {
	t.Helper()
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b := &testBundle{
		pool:  pgtest.NewPool(t),
		bcfg:  bc.config(t, logger),
		topic: uniqueTopic(t, bc.kind),
		logs:  logs,
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	return b
}

// uniqueTopic is a request topic of t alone; its RabbitMQ queue is deleted
// when t ends.
func uniqueTopic(t testing.TB, kind broker.Kind) string {
	t.Helper()
	topic := "profile.get.test" + randomHex(6)
	if kind == broker.KindAMQP {
		t.Cleanup(func() { deleteQueue(t, topic) })
	}
	return topic
}

func deleteQueue(t testing.TB, queue string) {
	conn, err := amqp091.Dial(amqpURL())
	if err != nil {
		t.Logf("clean up RabbitMQ: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Logf("clean up RabbitMQ: %v", err)
		return
	}
	defer ch.Close()
	_, _ = ch.QueueDelete(queue, false, false, false)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startServer runs a profile service in a router of its own until stop.
func (b *testBundle) startServer(t testing.TB, cfg profilerpc.ServerConfig) (stop func()) {
	t.Helper()
	cfg.RequestTopic = b.topic
	cfg.Logger = b.bcfg.Logger
	srv, err := profilerpc.NewServer(b.pool, b.bcfg, cfg)
	require.NoError(t, err)
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.AddHandlers(ctx, router))
	done := make(chan error, 1)
	go func() { done <- router.Run(context.Background()) }()
	select {
	case <-router.Running():
	case <-time.After(10 * time.Second):
		t.Fatal("router not running within 10s")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			require.NoError(t, router.Close())
			require.NoError(t, <-done)
			require.NoError(t, srv.Close())
		})
	}
	t.Cleanup(stop)
	return stop
}

// startClient runs a Client until t ends and waits until it is connected.
func (b *testBundle) startClient(t testing.TB, cfg profilerpc.ClientConfig) *profilerpc.Client {
	t.Helper()
	c, stop := b.runClient(t, cfg)
	t.Cleanup(func() { require.NoError(t, stop()) })
	require.Eventually(t, func() bool { return c.Ready(context.Background()) == nil },
		10*time.Second, 5*time.Millisecond, "client connects")
	return c
}

// runClient starts a Client's Run; stop cancels it and returns Run's error.
func (b *testBundle) runClient(t testing.TB, cfg profilerpc.ClientConfig) (c *profilerpc.Client, stop func() error) {
	t.Helper()
	cfg.RequestTopic = b.topic
	cfg.Logger = b.bcfg.Logger
	c, err := profilerpc.NewClient(b.bcfg, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	var runErr error
	return c, func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(15 * time.Second):
				runErr = fmt.Errorf("client Run did not return within 15s of cancel")
			}
		})
		return runErr
	}
}

// insertProfile creates a user with a profile named name and returns it.
func insertProfile(t testing.TB, pool *pgxpool.Pool, name string) profile.Profile {
	t.Helper()
	id := insertUser(t, pool)
	p := profile.Profile{UserID: id}
	require.NoError(t, pool.QueryRow(context.Background(), `
INSERT INTO profiles (user_id, display_name, bio, avatar_url, locale)
VALUES ($1::uuid, $2::text, 'bio of ' || $2::text, 'https://example.com/' || $1::text || '.png', 'fr')
RETURNING display_name, bio, avatar_url, locale, created_at, updated_at`, id, name).
		Scan(&p.DisplayName, &p.Bio, &p.AvatarURL, &p.Locale, &p.CreatedAt, &p.UpdatedAt))
	return p
}

// insertUser creates a user without a profile.
func insertUser(t testing.TB, pool *pgxpool.Pool) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := pool.Exec(context.Background(),
		`INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'User', 'not-a-hash')`,
		id, id.String()+"@example.com")
	require.NoError(t, err)
	return id
}

// requireSameProfile compares profiles, times to the microsecond
// PostgreSQL keeps.
func requireSameProfile(t testing.TB, want, got profile.Profile) {
	t.Helper()
	require.True(t, want.CreatedAt.Equal(got.CreatedAt), "created_at %s, want %s", got.CreatedAt, want.CreatedAt)
	require.True(t, want.UpdatedAt.Equal(got.UpdatedAt), "updated_at %s, want %s", got.UpdatedAt, want.UpdatedAt)
	want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
	require.Equal(t, want, got)
}

// requireNoErrorLogs fails t if anything was logged at error level.
func requireNoErrorLogs(t testing.TB, b *testlog.Buffer) {
	t.Helper()
	for _, rec := range b.Records(t, "") {
		require.NotEqual(t, "ERROR", rec["level"], "error logged: %v", rec)
	}
}
