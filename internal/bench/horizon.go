package bench

import (
	"context"
	"slices"
	"sync"
	"time"
)

// horizonSQL is how long the oldest transaction of the whole cluster that
// holds back the xid horizon has been open. The relay publishes a row only
// once every transaction older than it has ended, and snapshots are
// cluster-wide: another database's long transaction delays it too.
const horizonSQL = `
SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
FROM pg_stat_activity
WHERE (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) AND pid <> pg_backend_pid()`

// horizonSampler measures the horizon's age every 50 ms until stopped.
type horizonSampler struct {
	mu      sync.Mutex
	samples []time.Duration
	stop    func()
}

func (e *env) sampleHorizon(ctx context.Context) *horizonSampler {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	h := &horizonSampler{}
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var secs float64
			if err := e.pool.QueryRow(ctx, horizonSQL).Scan(&secs); err != nil {
				continue // a sample lost to cancellation or load: the others count
			}
			h.mu.Lock()
			h.samples = append(h.samples, time.Duration(secs*float64(time.Second)))
			h.mu.Unlock()
		}
	}()
	h.stop = func() { cancel(); <-done }
	return h
}

// summary returns the p99 and max of the samples, in ms.
func (h *horizonSampler) summary() (p99, maxMS float64) {
	h.mu.Lock()
	s := slices.Clone(h.samples)
	h.mu.Unlock()
	if len(s) == 0 {
		return 0, 0
	}
	slices.Sort(s)
	return percentile(s, 0.99), float64(s[len(s)-1]) / float64(time.Millisecond)
}
