package database_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/database"
	"github.com/outboxd/outboxd/internal/pgtest"
)

func TestMigrateUpDownUpOnEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))
	m := newMigrator(t, pool)

	applied, err := m.Up(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, applied)
	require.Equal(t, database.SetOutbox, applied[0].Set, "the library's set runs first")
	require.Equal(t, database.SetService, applied[len(applied)-1].Set)
	afterUp := tables(t, pool)
	require.Subset(t, afterUp, []string{"users", "outbox", "idempotency_keys", "inbox", "relay_leader"})

	st, err := m.Status(ctx)
	require.NoError(t, err)
	for _, s := range st {
		require.Equal(t, "applied", string(s.Status.State), "%s migration %s", s.Set, s.Status.Source.Path)
	}

	// The service's tables depend on the library's grants: it goes first.
	_, err = m.DownTo(ctx, database.SetService, 0)
	require.NoError(t, err)
	require.Subset(t, tables(t, pool), []string{"outbox", "inbox"})
	require.NotContains(t, tables(t, pool), "users")
	_, err = m.DownTo(ctx, database.SetOutbox, 0)
	require.NoError(t, err)
	require.Empty(t, tables(t, pool), "every down migration removes what its up created")

	again, err := m.Up(ctx)
	require.NoError(t, err)
	require.Len(t, again, len(applied))
	require.Equal(t, afterUp, tables(t, pool))
}

func TestMigrateDownDefaultsToTheServiceSetFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))
	m := newMigrator(t, pool)
	_, err := m.Up(ctx)
	require.NoError(t, err)

	res, err := m.Down(ctx, "")
	require.NoError(t, err)
	require.Equal(t, database.SetService, res.Set)
	require.Equal(t, "00015_grant_relay_slot_delete.sql", res.Result.Source.Path)

	_, err = m.DownTo(ctx, database.SetService, 0)
	require.NoError(t, err)
	res, err = m.Down(ctx, "")
	require.NoError(t, err)
	require.Equal(t, database.SetOutbox, res.Set, "with the service's set gone, down takes the library's")

	_, err = database.ParseSet("users")
	require.ErrorContains(t, err, `use "outbox" or "service"`)
}

func newMigrator(t *testing.T, pool *pgxpool.Pool) *database.Migrator {
	t.Helper()
	m, err := database.NewMigrator(pool, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// tables lists the tables of the public schema but the version tables.
func tables(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
SELECT tablename FROM pg_tables
WHERE schemaname = 'public' AND tablename NOT IN ('goose_db_version', 'outbox_goose_db_version')
ORDER BY 1`)
	require.NoError(t, err)
	var names []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		names = append(names, n)
	}
	require.NoError(t, rows.Err())
	return names
}

func TestOpenNamesAddressButNotPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := database.Open(ctx, "postgres://app:s3cret-pw@127.0.0.1:1/outbox?sslmode=disable&connect_timeout=2")
	require.Error(t, err)
	require.Contains(t, err.Error(), "127.0.0.1:1/outbox")
	require.NotContains(t, err.Error(), "s3cret-pw")

	_, err = database.Open(ctx, "postgres://app:s3cret-pw@127.0.0.1:5432/x?sslmode=bogus")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret-pw")
	require.Equal(t, "postgres://app@127.0.0.1:5432/outbox", database.Redact("postgres://app:s3cret-pw@127.0.0.1:5432/outbox"))
}
