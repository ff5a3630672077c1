package console

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outboxd/outboxd/internal/status"
)

// Snapshot is the overview's figures from the database at one moment.
type Snapshot struct {
	// Report is the backlog, the dead letters per handler and the active
	// relay, as `outboxd status` reports them.
	status.Report
	// Slot is the replication slot a relay in WAL capture records in
	// relay_slot, nil when none does.
	Slot *Slot `json:"slot"`
	// Err is why the last refresh failed, "" when it did not; the figures
	// are then the last good ones.
	Err string `json:"error,omitempty"`
}

// Slot is a relay's logical replication slot, from pg_replication_slots.
type Slot struct {
	Name string `json:"name"`
	// Active is whether a walsender streams it now.
	Active bool `json:"active"`
	// LagBytes is the WAL it holds for the relay: from its confirmed
	// position to the server's current one.
	LagBytes int64 `json:"lag_bytes"`
}

// snapshots keeps the latest Snapshot, refreshed in the background so that
// no request pays for a count of the tables.
type snapshots struct {
	db  Beginner
	mu  sync.Mutex
	cur *Snapshot
}

// Beginner starts transactions: a *pgxpool.Pool.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// latest returns the last snapshot, reading one first if there is none yet.
func (s *snapshots) latest(ctx context.Context) Snapshot {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur != nil {
		return *cur
	}
	return s.refresh(ctx)
}

// refresh reads a new snapshot and keeps it. On failure it keeps the last
// good figures with the error.
func (s *snapshots) refresh(ctx context.Context) Snapshot {
	next, err := collect(ctx, s.db)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.cur != nil {
			next = *s.cur
		}
		next.Err = err.Error()
	}
	s.cur = &next
	return next
}

func collect(ctx context.Context, db Beginner) (Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := status.Collect(ctx, db)
	if err != nil {
		return Snapshot{}, err
	}
	slot, err := relaySlot(ctx, db)
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{Report: r, Slot: slot}, nil
}

// relaySlot reads the slot of relay_slot that pg_replication_slots still
// has, the one being streamed first.
func relaySlot(ctx context.Context, db Beginner) (*Slot, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: replication slot: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	var s Slot
	err = tx.QueryRow(ctx, `
SELECT s.slot_name, s.active,
       COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn), 0)::bigint
FROM relay_slot r JOIN pg_replication_slots s ON s.slot_name = r.slot_name
WHERE s.database = current_database()
ORDER BY s.active DESC, r.created_at DESC
LIMIT 1`).Scan(&s.Name, &s.Active, &s.LagBytes)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("console: replication slot: %w", err)
	}
	return &s, nil
}

// run refreshes the snapshot every interval until ctx ends.
func (s *snapshots) run(ctx context.Context, interval time.Duration, onRefresh func(Snapshot)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		onRefresh(s.refresh(ctx))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
