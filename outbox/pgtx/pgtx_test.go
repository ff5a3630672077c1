package pgtx_test

import (
	"context"
	"fmt"
	"log"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox/pgtx"
)

// exampleDSN is an empty database for the example.
var exampleDSN string

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.WithEmptyDatabase(&exampleDSN))
}

// setup returns a pool of one connection on an empty database with a table
// notes, so that a test sees whether that connection survived.
func setup(t *testing.T) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.NewEmptyDatabase(t))
	require.NoError(t, err)
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(context.Background(), "CREATE TABLE notes (body text NOT NULL)")
	require.NoError(t, err)
	return pool
}

func backendPID(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var pid int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid))
	return pid
}

func TestRollbackWithACancelledContextKeepsTheConnection(t *testing.T) {
	t.Parallel()
	pool := setup(t)
	pid := backendPID(t, pool)

	ctx, cancel := context.WithCancel(context.Background())
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO notes VALUES ('rolled back')")
	require.NoError(t, err)
	cancel()
	pgtx.Rollback(ctx, tx)

	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM notes").Scan(&n))
	require.Zero(t, n, "the insert is rolled back")
	require.Equal(t, pid, backendPID(t, pool), "the connection went back to the pool, not closed")
}

func TestRollbackAfterCommitDoesNothing(t *testing.T) {
	t.Parallel()
	pool := setup(t)
	ctx := context.Background()

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO notes VALUES ('committed')")
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	pgtx.Rollback(ctx, tx)

	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n))
	require.Equal(t, 1, n)
}

// Defer Rollback right after Begin: every early return rolls back, even one
// caused by a cancelled context, and after Commit it does nothing.
func ExampleRollback() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDSN)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer pgtx.Rollback(ctx, tx)
	var sum int
	if err := tx.QueryRow(ctx, "SELECT 1 + 1").Scan(&sum); err != nil {
		return // rolled back by the deferred call
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum)
	// Output: 2
}
