package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
)

func TestParseKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want broker.Kind
	}{
		{"nats", broker.KindNATS},
		{"amqp", broker.KindAMQP},
		{"redis", broker.KindRedis},
		{"kafka", broker.KindKafka},
		{"postgres", broker.KindPostgres},
		{" NATS ", broker.KindNATS},
		{"Postgres", broker.KindPostgres},
		{"", broker.KindDefault},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := broker.ParseKind(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseKindRejectsUnknownListingValidKinds(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"rabbitmq", "jetstream", "natsx", "sql"} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			_, err := broker.ParseKind(in)
			require.ErrorContains(t, err, `unknown broker kind "`+in+`"`)
			require.ErrorContains(t, err, "nats, amqp, redis, kafka, postgres")
		})
	}
}

func TestConfigWithDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind    broker.Kind
		wantURL string
	}{
		{"", broker.NATSURLDefault},
		{broker.KindNATS, "nats://127.0.0.1:4222"},
		{broker.KindAMQP, "amqp://guest:guest@127.0.0.1:5672/"},
		{broker.KindRedis, "redis://127.0.0.1:6379/0"},
		{broker.KindKafka, "127.0.0.1:9092"},
		{broker.KindPostgres, broker.PostgresURLDefault},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			cfg := broker.Config{Kind: tt.kind}.WithDefaults()
			require.Equal(t, tt.wantURL, cfg.URL)
			require.Equal(t, broker.AckTimeoutDefault, cfg.AckTimeout)
			require.NotNil(t, cfg.Logger)
			if tt.kind == "" {
				require.Equal(t, broker.KindNATS, cfg.Kind)
			}
		})
	}

	t.Run("set fields are kept", func(t *testing.T) {
		t.Parallel()
		cfg := broker.Config{Kind: broker.KindRedis, URL: "redis://cache:6379/2", AckTimeout: time.Minute}.WithDefaults()
		require.Equal(t, "redis://cache:6379/2", cfg.URL)
		require.Equal(t, time.Minute, cfg.AckTimeout)
	})
}

func TestInvalidConfigNamesEveryBadField(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("kind and ack timeout", func(t *testing.T) {
		t.Parallel()
		cfg := broker.Config{Kind: "mqtt", URL: "mqtt://x", AckTimeout: -time.Second}
		_, err := broker.NewPublisher(ctx, cfg)
		require.ErrorContains(t, err, "Config.Kind")
		require.ErrorContains(t, err, "Config.AckTimeout")
		_, err = broker.NewSubscriber(ctx, cfg, "g")
		require.ErrorContains(t, err, "Config.Kind")
	})

	t.Run("kind must be lower case", func(t *testing.T) {
		t.Parallel()
		_, err := broker.NewPublisher(ctx, broker.Config{Kind: "NATS"})
		require.ErrorContains(t, err, "Config.Kind")
	})

	t.Run("URL errors never show the password", func(t *testing.T) {
		t.Parallel()
		for _, kind := range []broker.Kind{broker.KindNATS, broker.KindAMQP, broker.KindRedis} {
			_, err := broker.NewPublisher(ctx, broker.Config{Kind: kind, URL: string(kind) + "://user:s3cret@host:99999999999/%zz"})
			require.Error(t, err, kind)
			require.NotContains(t, err.Error(), "s3cret", kind)
			require.ErrorContains(t, err, "Config.URL", kind)
		}
		_, err := broker.NewPublisher(ctx, broker.Config{Kind: broker.KindPostgres, URL: "postgres://user:s3cret@host:notaport/db"})
		require.Error(t, err)
		require.NotContains(t, err.Error(), "s3cret")
	})
}

func TestNewSubscriberRejectsInvalidGroup(t *testing.T) {
	t.Parallel()
	for _, group := range []string{"", "email.worker", "a b", "grp*", "über", string(make([]byte, 65))} {
		_, err := broker.NewSubscriber(context.Background(), broker.Config{}, group)
		require.ErrorIs(t, err, broker.ErrInvalidGroup, "%q", group)
	}
}
