package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LeaderHeartbeatInterval is how often the leader refreshes its relay_leader
// row. A heartbeat older than a few intervals means the leader is gone.
const LeaderHeartbeatInterval = leaderCheckInterval

// ErrNoLeader is returned by CurrentLeader when no relay has led yet.
var ErrNoLeader = errors.New("relay: no leader recorded")

// Leader is the relay_leader row of a lock key: the replica that holds, or
// last held, the leader lock.
type Leader struct {
	// Name is the replica's Config.Name.
	Name string
	// Since is when it took the lead.
	Since time.Time
	// HeartbeatAt is its last heartbeat.
	HeartbeatAt time.Time
	// Alive reports whether the heartbeat is recent (within three
	// LeaderHeartbeatInterval, by the database's clock).
	Alive bool
}

// CurrentLeader returns the leader recorded for lockKey (0 for
// LockKeyDefault), for status commands.
func CurrentLeader(ctx context.Context, db DB, lockKey int64) (Leader, error) {
	rows, err := db.Query(ctx, `
SELECT name, since, heartbeat_at, heartbeat_at > now() - $2 * interval '1 millisecond'
FROM relay_leader WHERE lock_key = $1`,
		cmp.Or(lockKey, LockKeyDefault), float64(3*LeaderHeartbeatInterval/time.Millisecond))
	if err != nil {
		return Leader{}, fmt.Errorf("read relay leader: %w", err)
	}
	l, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (Leader, error) {
		var l Leader
		err := r.Scan(&l.Name, &l.Since, &l.HeartbeatAt, &l.Alive)
		return l, err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Leader{}, ErrNoLeader
	}
	if err != nil {
		return Leader{}, fmt.Errorf("read relay leader: %w", err)
	}
	return l, nil
}
