package relay_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/relay"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := newSink(t)

	_, err := relay.New(pool, s, relay.Config{
		BatchSize:       -1,
		Concurrency:     -2,
		PollInterval:    -time.Second,
		Retention:       -time.Hour,
		MaxAttempts:     -1,
		RetryBackoffMin: time.Second,
		RetryBackoffMax: time.Millisecond,
		StallTimeout:    -1,
		MetricsInterval: -1,
	})
	require.Error(t, err)
	for _, field := range []string{"BatchSize", "Concurrency", "PollInterval", "Retention", "MaxAttempts",
		"RetryBackoffMax", "StallTimeout", "MetricsInterval"} {
		require.ErrorContains(t, err, field)
	}

	_, err = relay.New(nil, s, relay.Config{})
	require.ErrorContains(t, err, "pool")
	_, err = relay.New(pool, nil, relay.Config{})
	require.ErrorContains(t, err, "publisher")

	r, err := relay.New(pool, s, relay.Config{})
	require.NoError(t, err, "the zero Config is valid")
	require.False(t, r.IsLeader())

	// A backoff floor above the default cap raises the cap with it.
	_, err = relay.New(pool, s, relay.Config{RetryBackoffMin: time.Minute})
	require.NoError(t, err)
}

func TestNewRegistersMetricsOnce(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := newSink(t)
	reg := prometheus.NewPedanticRegistry()
	_, err := relay.New(pool, s, relay.Config{Registerer: reg})
	require.NoError(t, err)
	_, err = relay.New(pool, s, relay.Config{Registerer: reg})
	require.ErrorContains(t, err, "register relay metrics")
}
