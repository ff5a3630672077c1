package bench

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestWithDatabaseKeepsEverythingButTheDatabase(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"postgres://ann:secret@db.example:6543/outbox?sslmode=disable&dbname=other",
		"postgresql://ann:secret@db.example:6543?sslmode=disable",
		"host=db.example port=6543 user=ann password=secret dbname=outbox sslmode=disable",
	} {
		got, err := withDatabase(dsn, "outboxd_bench_1")
		require.NoError(t, err)
		cfg, err := pgx.ParseConfig(got)
		require.NoError(t, err, got)
		require.Equal(t, "outboxd_bench_1", cfg.Database, dsn)
		require.Equal(t, "db.example", cfg.Host)
		require.Equal(t, uint16(6543), cfg.Port)
		require.Equal(t, "ann", cfg.User)
		require.Equal(t, "secret", cfg.Password)
	}
}
