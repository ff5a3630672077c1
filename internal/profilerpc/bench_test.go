package profilerpc_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outboxd/outboxd/internal/profilerpc"
)

// BenchmarkProfileRequestReply measures profile.get round trips (request
// out, database lookup, reply back) through a real broker over loopback:
// with one request in flight at a time, and with 32 at once from one
// Client. It reports round trips per second and the p50/p99 latency.
//
//	go test -run '^$' -bench ProfileRequestReply -benchtime 5000x ./internal/profilerpc/
func BenchmarkProfileRequestReply(b *testing.B) {
	for _, bc := range brokers() {
		for _, inFlight := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/in-flight=%d", bc.kind, inFlight), func(b *testing.B) {
				benchmarkRoundTrips(b, bc, inFlight)
			})
		}
	}
}

func benchmarkRoundTrips(b *testing.B, bc brokerCase, inFlight int) {
	tb := setup(b, bc)
	tb.startServer(b, profilerpc.ServerConfig{})
	c := tb.startClient(b, profilerpc.ClientConfig{Timeout: 10 * time.Second})
	p := insertProfile(b, tb.pool, "Bench")
	ctx := context.Background()
	// Warm up connections, channels and the database pool.
	for range 50 {
		if _, err := c.Profile(ctx, p.UserID); err != nil {
			b.Fatal(err)
		}
	}

	latencies := make([][]time.Duration, inFlight)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	for w := range inFlight {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				start := time.Now()
				if _, err := c.Profile(ctx, p.UserID); err != nil {
					b.Error(err)
					return
				}
				latencies[w] = append(latencies[w], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()

	all := slices.Concat(latencies...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	quantile := func(q float64) float64 {
		return float64(all[int(q*float64(len(all)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "round-trips/s")
	b.ReportMetric(quantile(0.50), "p50-ms")
	b.ReportMetric(quantile(0.99), "p99-ms")
}
