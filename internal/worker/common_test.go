package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/mail/mailtest"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/testlog"
	"github.com/outboxd/outboxd/internal/worker"
	"github.com/outboxd/outboxd/outbox"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(childMain())
	}
	pgtest.Main(m)
}

// testBundle is a worker wired to a fresh database, an in-process SMTP
// server and a GoChannel broker.
type testBundle struct {
	pool   *pgxpool.Pool
	smtp   *mailtest.Server
	pubsub *gochannel.GoChannel
	reg    *prometheus.Registry
	logs   *testlog.Buffer
	worker *worker.Worker
}

type setupOpts struct {
	cfg       worker.Config
	subscribe worker.SubscriberFactory // defaults to the bundle's GoChannel
	mailer    mail.Mailer              // defaults to SMTP to the bundle's server
	smtp      mailtest.Options
}

// setup builds a worker; start runs it.
func setup(t *testing.T, opts setupOpts) *testBundle {
	t.Helper()
	b := &testBundle{
		pool:   pgtest.NewPool(t),
		smtp:   mailtest.NewServer(t, opts.smtp),
		pubsub: gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 16}, nil),
		reg:    prometheus.NewRegistry(),
		logs:   &testlog.Buffer{},
	}
	t.Cleanup(func() { _ = b.pubsub.Close() })
	mailer := opts.mailer
	if mailer == nil {
		m, err := mail.NewSMTP(mail.SMTPConfig{
			Addr: b.smtp.Addr(), From: "outboxd <noreply@outboxd.test>", Timeout: 5 * time.Second,
			Logger: slog.New(slog.DiscardHandler),
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close() })
		mailer = m
	}
	cfg := opts.cfg
	cfg.Logger = slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Registerer = b.reg
	subscribe := opts.subscribe
	if subscribe == nil {
		subscribe = b.subscribe
	}
	w, err := worker.New(b.pool, subscribe, mailer, cfg)
	require.NoError(t, err)
	b.worker = w
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker logs:\n%s", b.logs.String())
		}
	})
	return b
}

// subscribe hands out the shared GoChannel: it fans every message out to
// every subscription, as consumer groups do. Closing is left to cleanup.
func (b *testBundle) subscribe(context.Context, string) (message.Subscriber, error) {
	return nopCloser{b.pubsub}, nil
}

type nopCloser struct{ message.Subscriber }

func (nopCloser) Close() error { return nil }

// start runs the worker until the test ends, and waits until it is ready:
// GoChannel drops messages published before the subscriptions exist.
func (b *testBundle) start(t *testing.T) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.worker.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = errors.New("worker did not stop within 30s")
			}
		})
		return runErr
	}
	t.Cleanup(func() { require.NoError(t, stop()) })
	require.Eventually(t, func() bool { return b.worker.Ready(ctx) == nil }, 10*time.Second, 5*time.Millisecond)
	return stop
}

// newEvent returns a user.created event for a new user.
func newEvent(name string) event.UserCreated {
	id := uuid.New()
	return event.UserCreated{
		UserID:    id,
		Email:     "user-" + id.String()[:8] + "@example.com",
		Name:      name,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond).Add(-time.Minute),
	}
}

// insertUser commits the users row the event announces, as signup does.
func insertUser(t *testing.T, pool *pgxpool.Pool, ev event.UserCreated) {
	t.Helper()
	_, err := pool.Exec(context.Background(),
		`INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, 'x', $4)`,
		ev.UserID, ev.Email, ev.Name, ev.CreatedAt)
	require.NoError(t, err)
}

// newMessage is the Watermill message the relay publishes for ev.
func newMessage(t *testing.T, id uuid.UUID, ev event.UserCreated, correlationID string) *message.Message {
	t.Helper()
	payload, err := json.Marshal(ev)
	require.NoError(t, err)
	msg := message.NewMessage(id.String(), payload)
	msg.Metadata.Set(outbox.MetadataMessageID, id.String())
	msg.Metadata.Set(outbox.MetadataKey, ev.UserID.String())
	msg.Metadata.Set(outbox.MetadataEnqueuedAt, time.Now().UTC().Format(time.RFC3339Nano))
	if correlationID != "" {
		msg.Metadata.Set(outbox.MetadataCorrelationID, correlationID)
	}
	return msg
}

func (b *testBundle) publish(t *testing.T, msgs ...*message.Message) {
	t.Helper()
	require.NoError(t, b.pubsub.Publish(event.TopicUserCreated, msgs...))
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// waitCount waits until sql counts want rows.
func waitCount(t *testing.T, pool *pgxpool.Pool, want int, timeout time.Duration, sql string, args ...any) {
	t.Helper()
	var last int
	ok := assertEventually(timeout, func() bool {
		last = count(t, pool, sql, args...)
		return last == want
	})
	require.True(t, ok, "waited %s for %d rows of %q, last saw %d", timeout, want, sql, last)
}

// waitProcessed waits until every handler recorded id in the inbox.
func waitProcessed(t *testing.T, pool *pgxpool.Pool, id uuid.UUID, handlers int, timeout time.Duration) {
	t.Helper()
	waitCount(t, pool, handlers, timeout, `SELECT count(*) FROM inbox WHERE message_id = $1`, id)
}

// assertEventually polls cond until it holds or timeout passes.
func assertEventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric returns the value of a worker metric for handler: a counter's
// value or a histogram's sample count.
func metric(t *testing.T, reg *prometheus.Registry, name, handler string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "handler" && l.GetValue() == handler {
					if h := m.GetHistogram(); h != nil {
						return float64(h.GetSampleCount())
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
