package schema_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/outbox/schema"
)

// libraryTables is everything the library may create.
var libraryTables = []string{"inbox", "outbox", "outbox_dead_letters", "outbox_goose_db_version", "relay_leader", "relay_slot"}

func TestMigrateCreatesOnlyTheLibrarysTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))

	// Replicas starting together take turns.
	var g errgroup.Group
	for range 4 {
		g.Go(func() error { return schema.Migrate(ctx, pool) })
	}
	require.NoError(t, g.Wait())
	require.Equal(t, libraryTables, tablesIn(t, pool, "public"))

	var prune bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT to_regprocedure('prune_inbox(interval)') IS NOT NULL`).Scan(&prune))
	require.True(t, prune, "the inbox's prune function")

	require.NoError(t, schema.Migrate(ctx, pool), "an up-to-date database changes nothing")
	require.Equal(t, libraryTables, tablesIn(t, pool, "public"))
}

func TestMigrateGoesWhereTheSearchPathSays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewEmptyDatabase(t)
	admin := pgtest.Connect(t, dsn)
	_, err := admin.Exec(ctx, `CREATE SCHEMA messaging`)
	require.NoError(t, err)

	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", "messaging")
	u.RawQuery = q.Encode()
	pool := pgtest.Connect(t, u.String())

	require.NoError(t, schema.Migrate(ctx, pool))
	require.Equal(t, libraryTables, tablesIn(t, pool, "messaging"))
	require.Empty(t, tablesIn(t, pool, "public"))

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, outbox.EnqueueTx(ctx, tx, outbox.Message{Topic: "order.placed"}))
	require.NoError(t, tx.Commit(ctx))
	var n int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM messaging.outbox`).Scan(&n))
	require.Equal(t, 1, n)
}

func tablesIn(t *testing.T, pool *pgxpool.Pool, schemaName string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, schemaName)
	require.NoError(t, err)
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		names = append(names, n)
	}
	require.NoError(t, rows.Err())
	return names
}
