package broker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/relay"
)

// BenchmarkPublish measures each transport's publish rate as the relay uses
// it: batches of one key's messages, each confirmed before Publish returns.
//
//	go test -run '^$' -bench Publish -benchtime 5000x ./internal/broker/
func BenchmarkPublish(b *testing.B) {
	const batch = 50
	for _, tr := range transports() {
		b.Run(string(tr.kind), func(b *testing.B) {
			cfg := tr.config(b)
			topic := uniqueTopic(b, cfg)
			pub, err := broker.NewPublisher(context.Background(), cfg)
			require.NoError(b, err)
			b.Cleanup(func() { _ = pub.Close() })
			msgs := make([]*message.Message, batch)
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				n := min(batch, b.N-i)
				for j := range n {
					msgs[j] = sample(i+j, "k")
				}
				if err := pub.Publish(topic, msgs[:n]...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkPublishBatch measures PublishBatch as the relay uses it: runs of
// messages of distinct keys, all in flight at once.
//
//	go test -run '^$' -bench PublishBatch -benchtime 20000x ./internal/broker/
func BenchmarkPublishBatch(b *testing.B) {
	const run = 500
	for _, tr := range transports() {
		b.Run(string(tr.kind), func(b *testing.B) {
			cfg := tr.config(b)
			topic := uniqueTopic(b, cfg)
			pub, err := broker.NewPublisher(context.Background(), cfg)
			require.NoError(b, err)
			b.Cleanup(func() { _ = pub.Close() })
			bp := pub.(relay.BatchPublisher)
			out := make([]relay.Outgoing, run)
			b.ResetTimer()
			for i := 0; i < b.N; i += run {
				n := min(run, b.N-i)
				for j := range n {
					out[j] = relay.Outgoing{Topic: topic, Message: sample(i+j, fmt.Sprintf("k%d", j))}
				}
				for _, err := range bp.PublishBatch(context.Background(), out[:n]) {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
