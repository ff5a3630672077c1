package schema

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// VersionTable is the goose version table of the library's migrations,
// apart from the service's goose_db_version.
const VersionTable = "outbox_goose_db_version"

// LockID is the advisory lock that serializes concurrent runs of the
// library's migrations: "outbox schema" in a form unlikely to collide with
// goose's default lock, which a service's own migrations take.
const LockID int64 = 0x6f7574626f7873

//go:embed migrations/*.sql
var embedded embed.FS

// FS holds the library's goose SQL migrations, one file per version at its
// root.
var FS fs.FS = mustSub(embedded, "migrations")

// NewProvider returns a goose provider of the library's migrations on db,
// recording them in VersionTable under an advisory lock (LockID). opts come
// after the library's own, for a logger say.
func NewProvider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(LockID))
	if err != nil {
		return nil, fmt.Errorf("outbox schema: migration lock: %w", err)
	}
	all := append([]goose.ProviderOption{
		goose.WithTableName(VersionTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	}, opts...)
	p, err := goose.NewProvider(goose.DialectPostgres, db, FS, all...)
	if err != nil {
		return nil, fmt.Errorf("outbox schema: load migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration of the library on pool. It is safe
// to call from every replica at start-up: they take turns, and a database
// that is up to date changes nothing.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := NewProvider(db)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("outbox schema: migrate up: %w", err)
	}
	return nil
}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
