package relay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
)

// The floor rises to a read's smallest pending id only once the horizon has
// passed that read's xmax, never above a row pending since, and a row found
// below it lowers it at once.
func TestClaimFloorAdvance(t *testing.T) {
	t.Parallel()
	id := func(v int64) *int64 { return &v }
	type read struct {
		smallest      *int64 // the smallest pending id the read found
		xmax, horizon int64
		floor         int64 // the floor after the read
	}
	for _, tc := range []struct {
		name  string
		reads []read
	}{
		{"a read's smallest id becomes the floor once the horizon passes its xmax", []read{
			{id(100), 50, 40, 0},   // candidate 100: transactions below xid 50 may still commit below it
			{id(120), 60, 49, 0},   // horizon 49: not yet
			{id(130), 70, 50, 100}, // horizon 50: 100 proven; 130 the next candidate
			{id(140), 80, 70, 130},
		}},
		{"a row committed since, below the candidate, holds the floor at its id", []read{
			{id(100), 50, 40, 0},
			{id(90), 60, 55, 90}, // a transaction in flight at the first read committed 90
		}},
		{"an unproven candidate is kept, so a steady flow cannot hold the floor back", []read{
			{id(100), 50, 40, 0},
			{id(200), 60, 45, 0},
			{id(300), 70, 49, 0},
			{id(400), 80, 65, 100}, // 50 passed (not 80): the first candidate
			{id(500), 90, 80, 400}, // the read at 80 became the candidate after it
		}},
		{"with nothing pending the floor stays", []read{
			{id(100), 50, 40, 0},
			{nil, 60, 55, 100},
			{nil, 70, 65, 100},
			{id(300), 80, 75, 100},
			{id(300), 90, 85, 300},
		}},
		{"a row found below the floor lowers it at once", []read{
			{id(100), 50, 40, 0},
			{id(200), 60, 55, 100},
			{id(200), 70, 65, 200},
			{id(150), 80, 75, 150}, // the sweep found 150, a row that escaped the horizon
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var f claimFloor
			for i, r := range tc.reads {
				f.advance(r.smallest, r.xmax, r.horizon)
				if f.floor != r.floor {
					smallest := "none"
					if r.smallest != nil {
						smallest = fmt.Sprint(*r.smallest)
					}
					t.Fatalf("read %d (smallest %s, xmax %d, horizon %d): floor %d, want %d", i, smallest, r.xmax, r.horizon, f.floor, r.floor)
				}
			}
		})
	}
}

// Against the database, read by read: a transaction that had its xid before
// the first read commits a row below the ids that read found; the floor
// must not have risen above it meanwhile, even once the rows the read found
// are gone, and it rises to it once it is committed.
func TestClaimFloorWaitsForTransactionsInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Connect(t, dsn)
	begin := func() pgx.Tx {
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(ctx) })
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		return tx
	}
	insert := func(db interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) int64 {
		var id int64
		require.NoError(t, db.QueryRow(ctx, `INSERT INTO outbox (message_id, topic, payload) VALUES (gen_random_uuid(), 't', '{}') RETURNING id`).Scan(&id))
		return id
	}
	var f claimFloor
	read := func() int64 {
		f.read = time.Time{} // read now, whatever the time since the last read
		floor, err := f.current(ctx, pool)
		require.NoError(t, err)
		return floor
	}

	older := begin()
	t.Cleanup(func() { _ = older.Rollback(ctx) })
	low := insert(older) // open: its row is not visible yet
	var high []int64
	for range 3 {
		high = append(high, insert(pool))
	}
	require.Less(t, low, high[0])

	require.Zero(t, read(), "the first read only finds a candidate")
	_, err := pool.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, high) // published
	require.NoError(t, err)
	require.Zero(t, read(), "the horizon has not passed the first read's xmax while the older transaction is open")
	require.Zero(t, read())

	require.NoError(t, older.Commit(ctx))
	require.Equal(t, low, read(), "committed, the older row is the smallest pending id, and the first read is proven")
	_, err = pool.Exec(ctx, `DELETE FROM outbox WHERE id = $1`, low)
	require.NoError(t, err)
	later := insert(pool)
	require.Equal(t, low, read(), "a candidate waits for the next read")
	require.Equal(t, later, read())
}
