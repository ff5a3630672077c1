// Package kafkatest gives tests a Kafka to publish to and consume from: the
// cluster KAFKA_BROKERS names, or else an in-process kfake cluster
// (github.com/twmb/franz-go/pkg/kfake) of its own, so that the Kafka
// transport is tested where no Kafka is installed.
package kafkatest

import (
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EnvBrokers names a real Kafka cluster (comma-separated host:port) to test
// against instead of kfake.
const EnvBrokers = "KAFKA_BROKERS"

// Partitions is the number of partitions of a topic kfake creates on first
// use: more than one, so that keys spread as on a real cluster.
const Partitions = 4

// Brokers returns the brokers t tests against, as Config.URL spells them:
// EnvBrokers when set, or else a kfake cluster of three brokers that
// creates topics on first use and closes when t ends. opts add to kfake's
// options; a real cluster ignores them.
func Brokers(t testing.TB, opts ...kfake.Opt) string {
	t.Helper()
	if brokers := os.Getenv(EnvBrokers); brokers != "" {
		return brokers
	}
	c := Start(t, opts...)
	return strings.Join(c.ListenAddrs(), ",")
}

// Start starts a kfake cluster for t alone, closed when t ends.
func Start(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{
		kfake.NumBrokers(3),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(Partitions),
	}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}
