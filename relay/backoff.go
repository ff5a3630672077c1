package relay

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff returns the delay before retry number attempt (1 for the first
// retry): min doubled per attempt, capped at max, then jittered down by up to
// half so that replicas and messages that failed together do not retry in
// lockstep.
func backoff(attempt int, minDelay, maxDelay time.Duration) time.Duration {
	d := minDelay
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits for d or until ctx ends, and reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
