package broker_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
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
