package relay

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// standbyRetryInterval is how often a standby tries the leader lock: it
	// bounds the takeover time after the leader dies.
	standbyRetryInterval = time.Second
	// leaderCheckInterval is how often the leader confirms that it still
	// holds the lock and refreshes its heartbeat. A dropped connection is
	// noticed at once, without waiting for it, so the interval bounds only
	// how stale relay_leader may look; each check is a write transaction
	// (and, in WAL capture, one more for the walsender that decodes it), so
	// an idle leader costs the server little.
	leaderCheckInterval = 5 * time.Second
)

// campaign competes for the leader lock until ctx ends, over a dedicated
// connection that it reopens with backoff whenever it is lost.
func (r *Relay) campaign(ctx context.Context) {
	for attempt := 1; ; attempt++ {
		connected, err := r.campaignOn(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			attempt = 1
		}
		delay := backoff(attempt, r.cfg.RetryBackoffMin, r.cfg.RetryBackoffMax)
		r.log.Warn("relay: leader lock connection lost, reconnecting", "error", err, "retry_in", delay)
		if !sleep(ctx, delay) {
			return
		}
	}
}

// campaignOn opens the lock connection, tries the lock every
// standbyRetryInterval and leads while it holds it. It returns when ctx ends
// or the connection fails; closing the connection releases the lock.
func (r *Relay) campaignOn(ctx context.Context) (connected bool, err error) {
	conn, err := r.connect(ctx, "leader lock")
	if err != nil {
		return false, err
	}
	defer closeConn(conn)
	for {
		var locked bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, r.cfg.LockKey).Scan(&locked); err != nil {
			return true, fmt.Errorf("try leader lock: %w", err)
		}
		if locked {
			return true, r.lead(ctx, conn)
		}
		if !sleep(ctx, standbyRetryInterval) {
			return true, nil
		}
	}
}

// lead publishes while conn holds the leader lock, and stops publishing as
// soon as the lock may be lost.
func (r *Relay) lead(ctx context.Context, conn *pgx.Conn) error {
	since := time.Now()
	if err := r.heartbeat(ctx, conn, since); err != nil {
		return err
	}
	r.log.Info("relay: became leader", "lock_key", r.cfg.LockKey)
	r.progress.Store(since.UnixNano())
	r.leader.Store(true)
	r.metrics.leader.Set(1)

	leadCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if r.Capture() == CaptureWAL {
		wg.Go(func() { r.captureWAL(leadCtx) })
	} else {
		wg.Go(func() { r.pump(leadCtx) })
		wg.Go(func() { r.listen(leadCtx) })
	}
	if r.cfg.Retention > 0 {
		wg.Go(func() { r.purge(leadCtx) })
	}
	err := r.hold(ctx, conn, since)
	r.leader.Store(false)
	cancel()
	wg.Wait()
	r.metrics.leader.Set(0)
	if err != nil {
		r.log.Warn("relay: stepped down", "error", err)
		return err
	}
	r.log.Info("relay: stepped down")
	return nil
}

// hold returns when ctx ends (nil) or when the lock may be lost (an error).
// Between checks it blocks reading the idle connection, so that a
// connection the server terminates or drops is noticed at once.
func (r *Relay) hold(ctx context.Context, conn *pgx.Conn, since time.Time) error {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, leaderCheckInterval)
		_, err := conn.WaitForNotification(waitCtx)
		expired := waitCtx.Err() != nil
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			continue // nothing listens on this connection, but a notice is harmless
		case !expired:
			return fmt.Errorf("leader lock connection: %w", err)
		}
		if err := r.heartbeat(ctx, conn, since); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// heartbeatSQL refreshes the relay_leader row, but only while this session
// holds the lock: it doubles as the lock check.
const heartbeatSQL = `
INSERT INTO relay_leader (lock_key, name, since, heartbeat_at)
SELECT $1, $2, $3, now()
WHERE EXISTS (
	SELECT 1 FROM pg_locks
	WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
		AND classid = $4 AND objid = $5 AND objsubid = 1
)
ON CONFLICT (lock_key) DO UPDATE
SET name = excluded.name, since = excluded.since, heartbeat_at = excluded.heartbeat_at`

func (r *Relay) heartbeat(ctx context.Context, conn *pgx.Conn, since time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, leaderCheckInterval)
	defer cancel()
	// pg_locks shows a bigint advisory key as its high and low 32 bits.
	key := uint64(r.cfg.LockKey)
	tag, err := conn.Exec(ctx, heartbeatSQL, r.cfg.LockKey, r.cfg.Name, since, uint32(key>>32), uint32(key))
	if err != nil {
		return fmt.Errorf("leader heartbeat: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("leader heartbeat: lock %d no longer held", r.cfg.LockKey)
	}
	return nil
}

// closeConn closes conn even when the caller's context has ended; closing
// releases the session's advisory lock and LISTEN.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
