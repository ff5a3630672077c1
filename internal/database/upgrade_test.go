package database_test

import (
	"context"
	"database/sql"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/database"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox/schema"
)

// everyTable is each table of the layout before the split, with its rows.
var everyTable = []string{
	"users", "outbox", "idempotency_keys", "outbox_dead_letters", "relay_leader",
	"inbox", "profiles", "audit_log", "dead_letters",
}

// fillEveryTable puts rows in every table of the pre-split layout.
const fillEveryTable = `
INSERT INTO users (id, email, name, password_hash) VALUES
	('00000000-0000-7000-8000-000000000001', 'ann@example.com', 'Ann', 'x'),
	('00000000-0000-7000-8000-000000000002', 'bob@example.com', 'Bob', 'x');
INSERT INTO outbox (message_id, topic, key, payload) VALUES
	('00000000-0000-7000-8000-0000000000a1', 'user.created', 'k1', '{}'),
	('00000000-0000-7000-8000-0000000000a2', 'user.created', 'k2', '{}');
INSERT INTO idempotency_keys (key, request_hash, status, response_body) VALUES ('key-1', '\x00', 201, '{}');
INSERT INTO outbox_dead_letters (id, message_id, topic, key, payload, metadata, created_at, xid, attempts,
	next_attempt_at, last_error)
	VALUES (99, '00000000-0000-7000-8000-0000000000b1', 'user.created', 'k3', '{}', '{}', now(),
	pg_current_xact_id(), 5, now(), 'too large');
INSERT INTO relay_leader (lock_key, name, since, heartbeat_at) VALUES (1, 'relay-1', now(), now());
INSERT INTO inbox (handler, message_id, processed_at) VALUES
	('profile', '00000000-0000-7000-8000-0000000000a1', now() - interval '3 hours'),
	('audit', '00000000-0000-7000-8000-0000000000a1', now());
INSERT INTO profiles (user_id, display_name) VALUES ('00000000-0000-7000-8000-000000000001', 'Ann');
INSERT INTO audit_log (event, actor, subject, occurred_at) VALUES ('user.created', 'system', 'ann', now());
INSERT INTO dead_letters (handler, message_id, topic, payload, error, attempts)
	VALUES ('email', '00000000-0000-7000-8000-0000000000a2', 'user.created', '{}', 'smtp down', 3);
`

// TestMigrateUpgradesThePreSplitLayout builds a database with the migrations
// as they were before the library had its own set (testdata/layout-v0, all
// in goose_db_version), fills every table, and runs today's Up on it.
func TestMigrateUpgradesThePreSplitLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })

	legacy, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("testdata/layout-v0"),
		goose.WithDisableGlobalRegistry(true))
	require.NoError(t, err)
	_, err = legacy.Up(ctx)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, fillEveryTable)
	require.NoError(t, err)
	before := rowCounts(t, pool)

	m := newMigrator(t, pool)
	_, err = m.Up(ctx)
	require.NoError(t, err)

	require.Equal(t, before, rowCounts(t, pool), "no row is lost")
	require.Equal(t, []int64{0, 1, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15}, versions(t, db, goose.DefaultTablename))
	require.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7}, versions(t, db, schema.VersionTable))
	st, err := m.Status(ctx)
	require.NoError(t, err)
	for _, s := range st {
		require.Equal(t, "applied", string(s.Status.State), "%s migration %s", s.Set, s.Status.Source.Path)
	}

	// The upgraded database is the one today's migrations build.
	fresh := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))
	_, err = newMigrator(t, fresh).Up(ctx)
	require.NoError(t, err)
	require.Equal(t, catalog(t, fresh), catalog(t, pool))

	// A second Up changes nothing, and each set goes down and up again.
	res, err := m.Up(ctx)
	require.NoError(t, err)
	require.Empty(t, res)
	_, err = m.DownTo(ctx, database.SetService, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"inbox", "outbox", "outbox_dead_letters", "relay_leader", "relay_slot"}, tables(t, pool))
	_, err = m.DownTo(ctx, database.SetOutbox, 0)
	require.NoError(t, err)
	require.Empty(t, tables(t, pool))
	_, err = m.Up(ctx)
	require.NoError(t, err)
	require.Equal(t, catalog(t, fresh), catalog(t, pool))
}

// TestMigrateAdoptsOnlyWhatExists: a pre-split database stopped at version
// 5 has no inbox yet; the library's set creates it.
func TestMigrateAdoptsOnlyWhatExists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Connect(t, pgtest.NewEmptyDatabase(t))
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	legacy, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("testdata/layout-v0"),
		goose.WithDisableGlobalRegistry(true))
	require.NoError(t, err)
	_, err = legacy.UpTo(ctx, 5)
	require.NoError(t, err)

	_, err = newMigrator(t, pool).Up(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{0, 1, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15}, versions(t, db, goose.DefaultTablename))
	require.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7}, versions(t, db, schema.VersionTable))
	require.Contains(t, tables(t, pool), "inbox")
}

func rowCounts(t *testing.T, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	counts := make(map[string]int, len(everyTable))
	for _, table := range everyTable {
		var n int
		require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
		require.NotZero(t, n, "table %s has rows", table)
		counts[table] = n
	}
	return counts
}

func versions(t *testing.T, db *sql.DB, table string) []int64 {
	t.Helper()
	rows, err := db.Query(`SELECT version_id FROM ` + table + ` WHERE is_applied ORDER BY version_id`)
	require.NoError(t, err)
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		require.NoError(t, rows.Scan(&v))
		out = append(out, v)
	}
	require.NoError(t, rows.Err())
	return out
}

// catalog describes the schema: columns, indexes, functions, triggers and
// grants, everything a migration makes.
func catalog(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT LIKE '%goose_db_version'
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename NOT LIKE '%goose_db_version'
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text || ' ' || coalesce(array_to_string(p.proacl, ','), '')
FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'publication ' || pubname || ' ' || tablename FROM pg_publication_tables
UNION ALL
SELECT 'trigger ' || tgname || ' on ' || tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'grant ' || table_name || ' ' || grantee || ' ' || privilege_type
FROM information_schema.table_privileges WHERE table_schema = 'public' AND grantee <> current_user
	AND table_name NOT LIKE '%goose_db_version'
UNION ALL
SELECT 'column grant ' || table_name || '.' || column_name || ' ' || grantee || ' ' || privilege_type
FROM information_schema.column_privileges WHERE table_schema = 'public' AND grantee <> current_user
	AND table_name NOT LIKE '%goose_db_version'
ORDER BY 1`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, out)
	return out
}
