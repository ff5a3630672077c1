package relay

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotRunning is returned by Ready when Run is not running.
var ErrNotRunning = errors.New("relay: not running")

// pendingSQL tells whether a row is waiting that the relay could publish
// now: committed under the horizon and due.
const pendingSQL = `
SELECT EXISTS (
	SELECT 1 FROM outbox
	WHERE published_at IS NULL AND next_attempt_at <= now() AND xid < ` + horizonSQL + `
)`

// Ready reports whether the relay is doing its job, for a readiness probe.
// It returns nil for a standby and for a leader that is publishing, however
// large its backlog, or has nothing to publish; it returns an error when Run
// is not running, or when the leader has published nothing for
// StallTimeout while messages it could publish are waiting (broker down,
// database errors). It queries the database only in that last case.
func (r *Relay) Ready(ctx context.Context) error {
	if !r.running.Load() {
		return ErrNotRunning
	}
	if !r.leader.Load() {
		return nil
	}
	if r.Capture() == CaptureWAL {
		return r.walReady()
	}
	idle := time.Since(time.Unix(0, r.progress.Load()))
	if idle < r.cfg.StallTimeout {
		return nil
	}
	var pending bool
	if err := r.pool.QueryRow(ctx, pendingSQL).Scan(&pending); err != nil {
		return fmt.Errorf("relay: check backlog: %w", err)
	}
	if !pending {
		return nil
	}
	return fmt.Errorf("relay: stalled: nothing published for %s while messages are waiting", idle.Round(time.Second))
}

// walReady tells a stalled WAL stream from an idle one: an idle stream
// still hears from the server every WALStatusInterval (it asks for a
// keepalive), and publishes nothing only because nothing is pending.
func (r *Relay) walReady() error {
	silent := time.Since(time.Unix(0, r.wal.receivedAt.Load()))
	if limit := max(3*r.cfg.WALStatusInterval, r.cfg.StallTimeout); silent > limit {
		return fmt.Errorf("relay: WAL stream stalled: nothing from the server for %s", silent.Round(time.Second))
	}
	idle := time.Since(time.Unix(0, r.progress.Load()))
	if idle < r.cfg.StallTimeout || r.wal.outstanding.Load() == 0 {
		return nil
	}
	return fmt.Errorf("relay: stalled: nothing published for %s while streamed messages are waiting", idle.Round(time.Second))
}
