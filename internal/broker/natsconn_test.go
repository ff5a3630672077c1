package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
)

// TestConnectNATS checks what every outboxd NATS connection shares: its
// name, reconnecting for good every second, and a dial bounded by ctx.
func TestConnectNATS(t *testing.T) {
	t.Parallel()
	url := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	for _, kind := range []broker.Kind{"", broker.KindNATS} {
		nc, err := broker.ConnectNATS(ctx, broker.Config{Kind: kind, URL: url}, "test role")
		require.NoError(t, err, "kind %q", kind)
		require.True(t, nc.IsConnected())
		require.Equal(t, "outboxd test role", nc.Opts.Name)
		require.Equal(t, -1, nc.Opts.MaxReconnect, "never gives up")
		require.Equal(t, time.Second, nc.Opts.ReconnectWait)
		require.Greater(t, nc.Opts.Timeout, nats.DefaultTimeout, "the dial waits as long as ctx lets it")
		require.LessOrEqual(t, nc.Opts.Timeout, 5*time.Second, "and no longer")
		nc.Close()
	}
}

func TestConnectNATSFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	_, err := broker.ConnectNATS(ctx, broker.Config{Kind: broker.KindAMQP}, "test")
	require.ErrorContains(t, err, "Config.Kind is amqp")

	_, err = broker.ConnectNATS(ctx, broker.Config{URL: "nats://user:s3cret@host:99999999999/%zz"}, "test")
	require.ErrorContains(t, err, "Config.URL")
	require.NotContains(t, err.Error(), "s3cret")

	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = broker.ConnectNATS(ctx, broker.Config{URL: "nats://user:s3cret@127.0.0.1:1"}, "test")
	require.ErrorContains(t, err, "connect to NATS")
	require.NotContains(t, err.Error(), "s3cret")
}
