package relay

import (
	"context"
	"fmt"
	"time"
)

// purgeChunk bounds the rows one purge statement deletes, so that a large
// purge never holds locks or bloats WAL in one long statement.
const purgeChunk = 5000

// purgeSQL deletes published rows older than the retention, through the
// partial index on published_at.
const purgeSQL = `
DELETE FROM outbox
WHERE id IN (
	SELECT id FROM outbox
	WHERE published_at IS NOT NULL AND published_at < now() - $1 * interval '1 millisecond'
	LIMIT $2
)`

// purge deletes published rows older than Retention, on the leader only,
// about twice per retention period (at most every minute, at least every
// second) until ctx ends.
func (r *Relay) purge(ctx context.Context) {
	every := min(max(r.cfg.Retention/2, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := purgePublished(ctx, r.pool, r.cfg.Retention)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("relay: purge published messages", "error", err)
		}
		if n > 0 {
			r.log.Debug("relay: purged published messages", "count", n)
		}
	}
}

func purgePublished(ctx context.Context, db DB, retention time.Duration) (int64, error) {
	var total int64
	for {
		tag, err := db.Exec(ctx, purgeSQL, float64(retention)/float64(time.Millisecond), purgeChunk)
		if err != nil {
			return total, fmt.Errorf("purge published messages: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < purgeChunk {
			return total, nil
		}
	}
}
