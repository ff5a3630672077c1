package relay

import (
	"context"
	"time"
)

// settleTimeout bounds the recording of a batch's outcome, which runs even
// after ctx ends: published messages must not stay unrecorded for long.
const settleTimeout = 10 * time.Second

// pump claims and publishes batches while ctx lasts: at once again after a
// full batch, on a notification or the poll otherwise, and after a backoff
// when the broker or the database fails.
func (r *Relay) pump(ctx context.Context) {
	poll := time.NewTimer(r.cfg.PollInterval)
	defer poll.Stop()
	failures := 0
	for {
		full, err := r.batch(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			delay := backoff(failures, r.cfg.RetryBackoffMin, r.cfg.RetryBackoffMax)
			r.log.Warn("relay: batch failed, retrying", "error", err, "failures", failures, "retry_in", delay)
			if !sleep(ctx, delay) {
				return
			}
			continue
		}
		failures = 0
		if full {
			continue
		}
		poll.Reset(r.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-poll.C:
		}
	}
}

// batch claims, publishes and settles one batch. It reports whether the
// batch was full, so more rows are likely waiting.
func (r *Relay) batch(ctx context.Context) (full bool, err error) {
	// A notification arriving from here on means rows the claim below may
	// not see: keep it for the next round, drop the older ones.
	select {
	case <-r.wake:
	default:
	}
	start := time.Now()
	rows, err := claim(ctx, r.pool, r.cfg.BatchSize)
	if err != nil {
		return false, err
	}
	if len(rows) == 0 {
		r.progress.Store(time.Now().UnixNano())
		return false, nil
	}

	out := r.publishBatch(ctx, rows)

	// What was published is recorded even when ctx has ended: those
	// messages are out, and recording them spares duplicates.
	settleCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	dead, err := settle(settleCtx, r.pool, out.published, out.failures, r.cfg.Retention > 0, r.cfg.MaxAttempts)
	if err != nil {
		return false, err
	}
	r.metrics.published.Add(float64(len(out.published)))
	r.metrics.permanent.Add(float64(len(out.failures)))
	r.metrics.deadLettered.Add(float64(len(dead)))
	r.metrics.batchDuration.Observe(time.Since(start).Seconds())
	r.logFailures(out.failures, dead)
	if out.transient != nil {
		r.metrics.transient.Inc()
		return false, out.transient
	}
	return len(rows) == r.cfg.BatchSize, nil
}

// logFailures reports each permanent failure: a retry to come, or a message
// given up on.
func (r *Relay) logFailures(failures []failure, dead []deadLetter) {
	for _, f := range failures {
		if f.row.attempts+1 >= r.cfg.MaxAttempts {
			continue
		}
		r.log.Warn("relay: broker rejected message, will retry", "message_id", f.row.messageID,
			"topic", f.row.topic, "attempt", f.row.attempts+1, "error", f.err, "retry_in", f.delay)
	}
	for _, d := range dead {
		r.log.Error("relay: broker rejected message, dead-lettered", "id", d.id, "message_id", d.messageID,
			"topic", d.topic, "attempts", r.cfg.MaxAttempts, "error", d.lastError)
	}
}
