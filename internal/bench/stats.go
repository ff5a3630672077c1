package bench

import (
	"slices"
	"time"
)

// percentile returns the p-quantile (0..1) of sorted, nearest rank, in ms.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

// latencies summarises a set of measured durations.
type latencies struct {
	n             int
	p50, p95, p99 float64 // ms
}

func summarize(d []time.Duration) latencies {
	s := slices.Clone(d)
	slices.Sort(s)
	return latencies{n: len(s), p50: percentile(s, 0.50), p95: percentile(s, 0.95), p99: percentile(s, 0.99)}
}
