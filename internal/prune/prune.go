// Package prune keeps tables bounded: it runs a delete of rows that have
// outlived their use (idempotency keys, inbox rows) on a schedule, for as
// long as a process runs.
package prune

import (
	"context"
	"log/slog"
	"time"
)

// Task deletes the rows of one table that are older than an age.
type Task struct {
	// Table names what is pruned, in logs.
	Table string
	// OlderThan is the age past which rows are deleted.
	OlderThan time.Duration
	// Delete deletes the rows older than its argument and returns how many.
	Delete func(ctx context.Context, olderThan time.Duration) (int64, error)
}

// maxInterval caps the time between two passes.
const maxInterval = time.Hour

// Interval is the time between two passes of a task that keeps rows for
// olderThan: a tenth of it, at most an hour, so rows live at most about 10%
// longer than asked.
func Interval(olderThan time.Duration) time.Duration {
	return min(olderThan/10, maxInterval)
}

// Run prunes t at once, then every Interval(t.OlderThan), until ctx ends;
// then it returns nil. A failed pass (database away) is logged and the next
// one tries again: pruning is never worth stopping a process for.
func Run(ctx context.Context, logger *slog.Logger, t Task) error {
	return run(ctx, logger, t, Interval(t.OlderThan))
}

func run(ctx context.Context, logger *slog.Logger, t Task, every time.Duration) error {
	log := logger.With("component", "prune", "table", t.Table)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		n, err := t.Delete(ctx, t.OlderThan)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn("prune failed; retrying at the next pass", "error", err, "next_in", every)
		case n > 0:
			log.Info("pruned old rows", "rows", n, "older_than", t.OlderThan)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
