package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The claim floor keeps a polling leader's claims as cheap on a backlog of
// millions as on one of thousands. A claim walks the primary key in id
// order, and rows already published stay in the index, dead, until VACUUM
// removes them: from the table's first id, every claim would walk past all
// of them. The floor is an id below which no row can still need
// publishing, and the claim starts its walk there.
//
// A row below the smallest pending id of a snapshot can still appear, from
// a transaction in progress when the snapshot was taken. So the smallest
// pending id m of a snapshot whose xmax is x becomes the floor only once
// the horizon (the oldest transaction of this database still in progress)
// has reached x: every transaction that had an xid then has ended, and
// every id allocated after the snapshot is above m. One case escapes that
// reasoning: a transaction whose first write is the outbox row draws the
// row's id a moment before it gets its xid, and if a snapshot falls in that
// moment the row can commit below the floor. The sweep covers it: every
// floorSweepEvery the smallest pending id is read from the table's start,
// and a row found below the floor lowers it at once, so such a row is
// published late, never lost.
const (
	// floorEvery is how often the leader reads the smallest pending id
	// above the floor: a claim walks the rows published in about two of
	// these periods.
	floorEvery = 100 * time.Millisecond
	// floorSweepEvery is how often that read starts from the table's
	// first id instead of the floor.
	floorSweepEvery = 10 * time.Second
)

// floorSQL reads, in one snapshot, the smallest pending id at or above $1
// (NULL when there is none), the snapshot's xmax and the horizon.
const floorSQL = `
SELECT (SELECT min(id) FROM outbox WHERE id >= $1 AND published_at IS NULL),
	pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
	` + horizonSQL + `::text::bigint`

// claimFloor is one leadership's floor. It is used by the pump's goroutine
// only.
type claimFloor struct {
	floor int64 // the claims' lowest id; 0 until the first floor is proven
	// candidate is the smallest pending id of a read, waiting for the
	// horizon to reach that read's xmax before it becomes the floor.
	candidate    int64
	xmax         int64
	hasCandidate bool

	read  time.Time // the last read
	swept time.Time // the last read from the table's start
}

// current returns the floor for the next claim, reading the table when
// floorEvery has passed since the last read. An error leaves the floor as
// it was, which is always safe.
func (f *claimFloor) current(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	now := time.Now()
	if now.Sub(f.read) < floorEvery {
		return f.floor, nil
	}
	from, sweep := f.floor, now.Sub(f.swept) >= floorSweepEvery
	if sweep {
		from = 0
	}
	var (
		smallest      *int64
		xmax, horizon int64
	)
	if err := pool.QueryRow(ctx, floorSQL, from).Scan(&smallest, &xmax, &horizon); err != nil {
		return f.floor, fmt.Errorf("read claim floor: %w", err)
	}
	f.read = now
	if sweep {
		f.swept = now
	}
	f.advance(smallest, xmax, horizon)
	return f.floor, nil
}

// advance takes one read: the smallest pending id from the read's start
// (nil when none), the read's xmax and horizon.
func (f *claimFloor) advance(smallest *int64, xmax, horizon int64) {
	// The candidate is proven once every transaction that had an xid at its
	// read has ended; rows pending now below it (committed since) keep the
	// floor at theirs. An unproven candidate is kept, not replaced by a
	// newer one, so that a steady flow of transactions cannot hold the
	// floor back for ever.
	if f.hasCandidate && horizon >= f.xmax {
		proven := f.candidate
		if smallest != nil && *smallest < proven {
			proven = *smallest
		}
		f.floor = max(f.floor, proven)
		f.hasCandidate = false
	}
	// A row below the floor (the sweep found one) lowers it at once.
	if smallest != nil && *smallest < f.floor {
		f.floor = *smallest
	}
	// With no pending row there is no candidate: the ids to come are
	// unknown.
	if !f.hasCandidate && smallest != nil {
		f.candidate, f.xmax, f.hasCandidate = *smallest, xmax, true
	}
}
