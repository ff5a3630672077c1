package worker_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/profile"
	"github.com/outboxd/outboxd/internal/profilerpc"
	"github.com/outboxd/outboxd/internal/worker"
)

// TestWorkerAnswersProfileRequests runs the profile service as a service of
// the worker, on one embedded NATS server with the events: a user's profile
// is not found until the worker has handled user.created, then found with
// the event's name; once the worker stops, requests time out within their
// deadline.
func TestWorkerAnswersProfileRequests(t *testing.T) {
	t.Parallel()
	const timeout = profilerpc.TimeoutDefault
	ctx := context.Background()
	bcfg := startNATS(t)
	pool := pgtest.NewPool(t)
	srv, err := profilerpc.NewServer(pool, bcfg, profilerpc.ServerConfig{Logger: bcfg.Logger})
	require.NoError(t, err)
	w, err := worker.New(pool, func(ctx context.Context, group string) (message.Subscriber, error) {
		return broker.NewSubscriber(ctx, bcfg, group)
	}, nil, worker.Config{
		Handlers: []string{worker.HandlerProfile},
		Services: []worker.Service{srv},
		Logger:   bcfg.Logger,
	})
	require.NoError(t, err)
	stopWorker := runUntilStopped(t, w.Run)
	require.Eventually(t, func() bool { return w.Ready(ctx) == nil }, 10*time.Second, 5*time.Millisecond)

	client, err := profilerpc.NewClient(bcfg, profilerpc.ClientConfig{Timeout: timeout, Logger: bcfg.Logger})
	require.NoError(t, err)
	stopClient := runUntilStopped(t, client.Run)
	t.Cleanup(func() { require.NoError(t, stopClient()) })
	require.Eventually(t, func() bool { return client.Ready(ctx) == nil }, 10*time.Second, 5*time.Millisecond)

	ev := newEvent("Ann")
	insertUser(t, pool, ev)
	_, err = client.Profile(ctx, ev.UserID)
	require.ErrorIs(t, err, profile.ErrNotFound, "no profile before the event is handled")

	require.NoError(t, publisher(t, bcfg).Publish("user.created", newMessage(t, uuid.New(), ev, "")))
	var got profile.Profile
	require.Eventually(t, func() bool {
		got, err = client.Profile(ctx, ev.UserID)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the profile is found once the worker created it")
	require.Equal(t, ev.UserID, got.UserID)
	require.Equal(t, "Ann", got.DisplayName)

	require.NoError(t, stopWorker())
	began := time.Now()
	_, err = client.Profile(ctx, ev.UserID)
	elapsed := time.Since(began)
	require.ErrorIs(t, err, profile.ErrTimeout)
	require.GreaterOrEqual(t, elapsed, timeout)
	require.Less(t, elapsed, timeout+timeout/10, "times out within its deadline + 10%%")
}

// TestServiceThatCannotConnectFailsRun gives the worker a profile service
// whose broker does not answer: Run fails at once, naming the service.
func TestServiceThatCannotConnectFailsRun(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	pool := pgtest.NewPool(t)
	bcfg := broker.Config{Kind: broker.KindNATS, URL: "nats://" + addr, Logger: slog.New(slog.DiscardHandler)}
	srv, err := profilerpc.NewServer(pool, bcfg, profilerpc.ServerConfig{})
	require.NoError(t, err)
	b := setup(t, setupOpts{cfg: worker.Config{Handlers: []string{worker.HandlerAudit}, Services: []worker.Service{srv}}})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = b.worker.Run(ctx)
	require.ErrorContains(t, err, "worker: service")
	require.ErrorContains(t, err, "connect to NATS")
	require.NoError(t, ctx.Err(), "failed at once rather than waiting")
}

// runUntilStopped runs run until stop, which returns run's error.
func runUntilStopped(t *testing.T, run func(context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stopped := false
	var err error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("did not stop within 30s")
			}
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}
