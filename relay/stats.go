package relay

import (
	"context"
	"fmt"
	"time"
)

// statsSQL measures what the hot path does not: the backlog, its oldest row,
// the oldest open transaction of this database with an xid (it holds back
// the rows committed after it got its xid, see horizonSQL) or a snapshot
// (it holds back the vacuum of deleted rows), prepared transactions
// included, and the WAL the relay's slot keeps ($1; 0 without one). One
// statement: an idle relay's every transaction counts.
const statsSQL = `
SELECT
	(SELECT count(*) FROM outbox WHERE published_at IS NULL),
	coalesce((SELECT extract(epoch FROM now() - min(created_at)) FROM outbox WHERE published_at IS NULL), 0)::float8,
	coalesce(extract(epoch FROM now() - least(
		(SELECT min(xact_start) FROM pg_stat_activity
		 WHERE datname = current_database() AND pid <> pg_backend_pid()
			AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)),
		(SELECT min(prepared) FROM pg_prepared_xacts WHERE database = current_database())
	)), 0)::float8,
	coalesce((SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)
		FROM pg_replication_slots WHERE slot_name = $1), 0)::float8`

// collectStats sets the SQL-measured gauges every MetricsInterval until ctx
// ends. Every replica collects, so any replica's /metrics shows the backlog.
func (r *Relay) collectStats(ctx context.Context) {
	t := time.NewTicker(r.cfg.MetricsInterval)
	defer t.Stop()
	for {
		if err := r.measure(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("relay: measure backlog", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Relay) measure(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.MetricsInterval)
	defer cancel()
	var (
		backlog              int64
		oldest, horizon, lag float64
	)
	if err := r.pool.QueryRow(ctx, statsSQL, r.cfg.Slot).Scan(&backlog, &oldest, &horizon, &lag); err != nil {
		return fmt.Errorf("measure backlog: %w", err)
	}
	r.metrics.backlog.Set(float64(backlog))
	r.metrics.oldestPendingAge.Set(max(oldest, 0))
	r.metrics.horizonAge.Set(max(horizon, 0))
	r.metrics.slotLag.Set(max(lag, 0))
	return nil
}
