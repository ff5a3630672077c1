package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
)

// brokerUnderTest is a broker config for one test, with the embedded NATS
// server (own store, free port) for the nats kind so that tests stay
// isolated from each other.
func brokerUnderTest(t *testing.T, kind broker.Kind, dsn string) broker.Config {
	t.Helper()
	cfg := broker.Config{Kind: kind, AckTimeout: 5 * time.Second}
	switch kind {
	case broker.KindNATS:
		url, stop, err := broker.StartEmbeddedNATS(context.Background(), t.TempDir())
		require.NoError(t, err)
		t.Cleanup(stop)
		cfg.URL = url
	case broker.KindPostgres:
		cfg.URL = dsn
	case broker.KindKafka:
		cfg.URL = os.Getenv("KAFKA_BROKERS")
	}
	return cfg
}

// brokerKinds are the brokers the end-to-end tests run against; Kafka only
// where KAFKA_BROKERS names one (none runs on the CI machine).
func brokerKinds() []broker.Kind {
	kinds := []broker.Kind{broker.KindNATS, broker.KindAMQP, broker.KindRedis, broker.KindPostgres}
	if os.Getenv("KAFKA_BROKERS") != "" {
		kinds = append(kinds, broker.KindKafka)
	}
	return kinds
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
