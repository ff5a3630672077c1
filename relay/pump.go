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
	var next *[]row // claimed while the previous batch was publishing
	floor := &claimFloor{}
	claim := func(ctx context.Context, inFlight []row) ([]row, error) {
		return r.claim(ctx, floor, inFlight)
	}
	for {
		var (
			more bool
			err  error
		)
		next, more, err = r.batch(ctx, next, claim)
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
		if more {
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

// batch publishes and settles one batch: prefetched when not nil, claimed
// now otherwise. When the batch is full it claims the next one while this
// one publishes, overlapping the database's work with the broker's, and
// returns it if every message of this one was published: the next batch
// holds later messages of the same keys, which may go out only after these.
// more reports whether rows are likely waiting.
func (r *Relay) batch(ctx context.Context, prefetched *[]row, claim claimFunc) (next *[]row, more bool, err error) {
	start := time.Now()
	var rows []row
	if prefetched != nil {
		rows = *prefetched
	} else if rows, err = claim(ctx, nil); err != nil {
		return nil, false, err
	}
	if len(rows) == 0 {
		r.progress.Store(time.Now().UnixNano())
		return nil, false, nil
	}

	full := len(rows) == r.cfg.BatchSize
	published := make(chan outcome, 1)
	go func() { published <- r.publishBatch(ctx, rows) }()
	var (
		following []row
		claimErr  error
	)
	if full {
		following, claimErr = claim(ctx, rows)
	}
	out := <-published
	if _, err := r.record(ctx, start, out); err != nil {
		return nil, false, err
	}
	switch {
	case out.transient != nil:
		r.metrics.transient.Inc()
		return nil, false, out.transient
	case claimErr != nil:
		return nil, false, claimErr
	case !full:
		return nil, false, nil
	case len(out.failures) > 0 || ctx.Err() != nil:
		// A key stopped in this batch: claim afresh, without its later rows.
		return nil, true, nil
	}
	return &following, true, nil
}

// record settles the outcome of a batch that started at start, in both
// capture modes, and counts it. What was published is recorded even when
// ctx has ended: those messages are out, and recording them spares
// duplicates.
func (r *Relay) record(ctx context.Context, start time.Time, out outcome) ([]deadLetter, error) {
	settleCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	dead, err := settle(settleCtx, r.pool, out.published, out.failures, r.cfg.Retention > 0, r.cfg.MaxAttempts)
	if err != nil {
		return nil, err
	}
	r.metrics.published.Add(float64(len(out.published)))
	r.metrics.permanent.Add(float64(len(out.failures)))
	r.metrics.deadLettered.Add(float64(len(dead)))
	r.metrics.batchDuration.Observe(time.Since(start).Seconds())
	r.logFailures(out.failures, dead)
	return dead, nil
}

// claimFunc claims the next batch of a source, leaving out the rows of
// inFlight, which are being published.
type claimFunc func(ctx context.Context, inFlight []row) ([]row, error)

// claim claims the next batch from floor up, leaving out the rows of
// inFlight, which are being published. A notification arriving from here on
// may be about rows this claim does not see, so it is kept for the next
// round, and the older ones are dropped.
func (r *Relay) claim(ctx context.Context, floor *claimFloor, inFlight []row) ([]row, error) {
	select {
	case <-r.wake:
	default:
	}
	from, err := floor.current(ctx, r.pool)
	if err != nil {
		return nil, err
	}
	exclude := make([]int64, len(inFlight))
	for i := range inFlight {
		exclude[i] = inFlight[i].id
	}
	return claim(ctx, r.pool, r.cfg.BatchSize, exclude, nil, from)
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
