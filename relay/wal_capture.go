package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
)

// walChunkBuffer is how many chunks the stream reads ahead of the
// processor: with BatchSize rows a chunk, it bounds the rows in memory.
const walChunkBuffer = 4

// captureWAL streams the outbox's inserts from the slot and publishes them
// until ctx ends, reconnecting with backoff when the stream fails.
func (r *Relay) captureWAL(ctx context.Context) {
	for attempt := 1; ; attempt++ {
		streamed, err := r.streamWAL(ctx)
		if ctx.Err() != nil {
			return
		}
		if streamed {
			attempt = 1
		}
		delay := backoff(attempt, r.cfg.RetryBackoffMin, r.cfg.RetryBackoffMax)
		r.log.Warn("relay: WAL stream lost, reconnecting", "slot", r.cfg.Slot, "error", err, "retry_in", delay)
		if !sleep(ctx, delay) {
			return
		}
	}
}

// streamWAL opens the slot (creating it, and publishing what the table
// holds, when it is new or was lost), starts the stream and processes it
// until ctx ends or something fails. streamed reports whether the stream
// started.
func (r *Relay) streamWAL(ctx context.Context) (streamed bool, err error) {
	st, err := r.slotState(ctx)
	if err != nil {
		return false, err
	}
	if st.exists && st.database != r.pool.Config().ConnConfig.Database {
		return false, fmt.Errorf("replication slot %s belongs to database %q: give this relay a slot of its own", r.cfg.Slot, st.database)
	}
	rec, err := r.slotRecord(ctx)
	if err != nil {
		return false, err
	}
	resynced := false
	switch {
	case st.exists && st.walStatus == "lost":
		resynced = true
		r.resync(ctx, "slot_invalidated", "the server removed WAL the slot still needed (max_slot_wal_keep_size)")
	case st.exists && !rec.found:
		resynced = true
		r.resync(ctx, "unknown_slot", "the slot was not created by a relay (or its record is gone), so what it skipped is unknown")
	}
	if resynced {
		if err := r.dropSlot(ctx, st); err != nil {
			return false, err
		}
		st = slotState{}
	}
	if err := r.releaseSlot(ctx, st); err != nil {
		return false, err
	}

	conn, err := r.connectReplication(ctx)
	if err != nil {
		return false, err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()

	start := st.confirmed
	var snapshot *string
	if !st.exists {
		if !resynced {
			r.resync(ctx, "new_slot", "no slot yet (first start, or the slot was dropped)")
		}
		// A record outliving its slot would pass for the new slot's if the
		// relay stopped between creating and recording it: the next start
		// would then skip the rows the new stream never carries. Without a
		// record, it replaces that slot instead (unknown_slot).
		if err := r.forgetSlot(ctx); err != nil {
			return false, err
		}
		lsn, name, err := r.createSlot(ctx, conn)
		if err != nil {
			return false, err
		}
		snap, err := r.importSnapshot(ctx, name)
		if err != nil {
			return false, err
		}
		if err := r.recordSlot(ctx, snap); err != nil {
			return false, err
		}
		start, snapshot = lsn, &snap
	} else if !rec.drained {
		// A relay stopped before it had published what the table held.
		r.log.Warn("relay: the slot's table rows were not all published yet, publishing the rest first", "slot", r.cfg.Slot)
		snapshot = &rec.snapshot
	}
	err = pglogrepl.StartReplication(ctx, conn, r.cfg.Slot, start, pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{
			"proto_version '1'",
			"publication_names " + quoteLiteral(r.cfg.Publication),
			"binary 'true'",
		},
	})
	if err != nil {
		if isSlotInvalidated(err) {
			r.resync(ctx, "slot_invalidated", err.Error())
			if dropErr := r.dropSlot(ctx, slotState{exists: true}); dropErr != nil {
				return false, errors.Join(err, dropErr)
			}
		}
		return false, fmt.Errorf("start streaming slot %s at %s: %w", r.cfg.Slot, start, err)
	}
	r.log.Info("relay: streaming the WAL", "slot", r.cfg.Slot, "from", start.String())

	pos := &r.wal
	pos.confirmed.Store(uint64(start))
	pos.outstanding.Store(0)
	pos.movedAt.Store(time.Now().UnixNano())
	pos.receivedAt.Store(time.Now().UnixNano())
	chunks := make(chan walChunk, walChunkBuffer)
	stream := &walStream{conn: conn, pos: pos, out: chunks, batch: r.cfg.BatchSize, interval: r.cfg.WALStatusInterval}

	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg        sync.WaitGroup
		streamErr error
	)
	wg.Go(func() {
		streamErr = stream.run(streamCtx)
		cancel()
	})
	procErr := r.processWAL(streamCtx, snapshot, chunks)
	cancel()
	wg.Wait()
	return true, errors.Join(streamErr, procErr)
}

// resync says loudly that the relay publishes what the table holds before
// it streams: nothing is lost, but it is worth knowing why.
func (r *Relay) resync(_ context.Context, reason, detail string) {
	r.metrics.resyncs.WithLabelValues(reason).Inc()
	r.log.Warn("relay: new replication slot: publishing every pending row of the outbox table, then streaming",
		"slot", r.cfg.Slot, "reason", reason, "detail", detail)
}

// processWAL publishes, first, the rows visible in snapshot (when the slot
// is new: what the table held before the stream's first commit), then the
// streamed chunks, and advances the slot's confirmed position past each
// transaction whose rows are all settled.
func (r *Relay) processWAL(ctx context.Context, snapshot *string, chunks <-chan walChunk) error {
	if snapshot != nil {
		if err := r.drainSnapshot(ctx, *snapshot); err != nil {
			return err
		}
		if err := r.markDrained(ctx); err != nil {
			return err
		}
	}
	p := walProcessor{r: r, pos: &r.wal, held: make(map[string]time.Time)}
	return p.run(ctx, chunks)
}

// drainSnapshot publishes every pending row visible in snapshot, as polling
// does (id order, held keys, retries, dead letters), and returns once none
// is left. The stream waits meanwhile: it carries only later commits, which
// must not overtake these.
func (r *Relay) drainSnapshot(ctx context.Context, snapshot string) error {
	claimSnapshot := func(ctx context.Context, inFlight []row) ([]row, error) {
		exclude := make([]int64, len(inFlight))
		for i := range inFlight {
			exclude[i] = inFlight[i].id
		}
		return claim(ctx, r.pool, r.cfg.BatchSize, exclude, &snapshot, 0)
	}
	failures := 0
	var next *[]row
	for {
		var (
			more bool
			err  error
		)
		next, more, err = r.batch(ctx, next, claimSnapshot)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			failures++
			delay := backoff(failures, r.cfg.RetryBackoffMin, r.cfg.RetryBackoffMax)
			r.log.Warn("relay: batch failed, retrying", "error", err, "failures", failures, "retry_in", delay)
			if !sleep(ctx, delay) {
				return ctx.Err()
			}
			continue
		}
		failures = 0
		if more {
			continue
		}
		wait, err := r.snapshotLeft(ctx, snapshot)
		if err != nil {
			return err
		}
		if wait < 0 {
			r.log.Info("relay: published the rows the table held, streaming")
			return nil
		}
		// Rows waiting for a retry after a permanent failure.
		if !sleep(ctx, min(wait, r.cfg.PollInterval)) {
			return ctx.Err()
		}
	}
}

// snapshotLeft returns how long until the next pending row visible in
// snapshot is due, or -1 when none is left.
func (r *Relay) snapshotLeft(ctx context.Context, snapshot string) (time.Duration, error) {
	var wait *float64
	err := r.pool.QueryRow(ctx, `
SELECT CASE WHEN count(*) > 0
	THEN extract(epoch FROM greatest(min(next_attempt_at), now()) - now())::float8 END
FROM outbox
WHERE published_at IS NULL AND pg_visible_in_snapshot(xid, $1::pg_snapshot)`, snapshot).Scan(&wait)
	if err != nil {
		return 0, fmt.Errorf("look for rows left in the snapshot: %w", err)
	}
	if wait == nil {
		return -1, nil
	}
	return max(time.Duration(*wait*float64(time.Second)), 0), nil
}
