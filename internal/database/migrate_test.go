package database_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/database"
	"github.com/outboxd/outboxd/internal/pgtest"
)

func TestMigrateUpDownUpOnEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))
	m, err := database.NewMigrator(pool, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })

	tables := func() []string {
		rows, err := pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version' ORDER BY 1`)
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

	applied, err := m.Up(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, applied)
	afterUp := tables()
	require.Subset(t, afterUp, []string{"users", "outbox", "idempotency_keys"})

	st, err := m.Status(ctx)
	require.NoError(t, err)
	for _, s := range st {
		require.Equal(t, "applied", string(s.State), "migration %s", s.Source.Path)
	}

	_, err = m.DownTo(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, tables(), "every down migration removes what its up created")

	again, err := m.Up(ctx)
	require.NoError(t, err)
	require.Len(t, again, len(applied))
	require.Equal(t, afterUp, tables())
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
