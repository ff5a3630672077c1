package database

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/outboxd/outboxd/migrations"
	"github.com/outboxd/outboxd/outbox/schema"
)

// Set names one of the two migration sets outboxd runs.
type Set string

const (
	// SetOutbox is the outbox library's migrations (package schema), in
	// schema.VersionTable. They run first: the service's grant on them.
	SetOutbox Set = "outbox"
	// SetService is outboxd's own migrations (package migrations), in
	// goose's default goose_db_version.
	SetService Set = "service"
)

// Sets lists the migration sets in the order Up applies them.
var Sets = []Set{SetOutbox, SetService}

// Migrator applies both migration sets. Replicas that start together
// serialize on PostgreSQL advisory locks instead of racing.
type Migrator struct {
	db        *sql.DB
	providers map[Set]*goose.Provider
}

// SetResult is what one migration did, and in which set.
type SetResult struct {
	Set    Set
	Result *goose.MigrationResult
}

// SetStatus is one migration's state, and its set.
type SetStatus struct {
	Set    Set
	Status *goose.MigrationStatus
}

// NewMigrator returns a Migrator over pool. Close releases it; the pool stays
// open.
func NewMigrator(pool *pgxpool.Pool, logger *slog.Logger) (*Migrator, error) {
	db := stdlib.OpenDBFromPool(pool)
	var opts []goose.ProviderOption
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	library, err := schema.NewProvider(db, opts...)
	if err != nil {
		db.Close()
		return nil, err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	service, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		append([]goose.ProviderOption{goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true)}, opts...)...)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("load service migrations: %w", err)
	}
	return &Migrator{db: db, providers: map[Set]*goose.Provider{SetOutbox: library, SetService: service}}, nil
}

// Up applies every pending migration: first it records a database migrated
// before the split in the library's history (see adoptLibraryHistory), then
// the library's set, then the service's.
func (m *Migrator) Up(ctx context.Context) ([]SetResult, error) {
	if err := adoptLibraryHistory(ctx, m.db); err != nil {
		return nil, err
	}
	var all []SetResult
	for _, set := range Sets {
		res, err := m.providers[set].Up(ctx)
		all = append(all, tag(set, res)...)
		if err != nil {
			return all, fmt.Errorf("migrate up (%s set): %w", set, err)
		}
	}
	return all, nil
}

// Down rolls back the newest applied migration of set; an empty set means
// the service's while it has any applied, else the library's.
func (m *Migrator) Down(ctx context.Context, set Set) (SetResult, error) {
	if set == "" {
		var err error
		if set, err = m.newestSet(ctx); err != nil {
			return SetResult{}, err
		}
	}
	p, err := m.provider(set)
	if err != nil {
		return SetResult{}, err
	}
	res, err := p.Down(ctx)
	if err != nil {
		return SetResult{Set: set, Result: res}, fmt.Errorf("migrate down (%s set): %w", set, err)
	}
	return SetResult{Set: set, Result: res}, nil
}

// DownTo rolls back every migration of set newer than version (0: all of
// them). The service's set must be rolled back before the library's.
func (m *Migrator) DownTo(ctx context.Context, set Set, version int64) ([]SetResult, error) {
	p, err := m.provider(set)
	if err != nil {
		return nil, err
	}
	res, err := p.DownTo(ctx, version)
	if err != nil {
		return tag(set, res), fmt.Errorf("migrate down to %d (%s set): %w", version, set, err)
	}
	return tag(set, res), nil
}

// Status reports every migration of both sets, library first, and whether
// it is applied.
func (m *Migrator) Status(ctx context.Context) ([]SetStatus, error) {
	var all []SetStatus
	for _, set := range Sets {
		st, err := m.providers[set].Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("migration status (%s set): %w", set, err)
		}
		for _, s := range st {
			all = append(all, SetStatus{Set: set, Status: s})
		}
	}
	return all, nil
}

// ParseSet returns the set named s ("" for none).
func ParseSet(s string) (Set, error) {
	switch Set(s) {
	case "", SetOutbox, SetService:
		return Set(s), nil
	}
	return "", fmt.Errorf("unknown migration set %q: use %q or %q", s, SetOutbox, SetService)
}

// Close releases the migrator's database handle (not the pool).
func (m *Migrator) Close() error { return m.db.Close() }

func (m *Migrator) provider(set Set) (*goose.Provider, error) {
	p, ok := m.providers[set]
	if !ok {
		return nil, fmt.Errorf("unknown migration set %q: use %q or %q", set, SetOutbox, SetService)
	}
	return p, nil
}

// newestSet is the set whose migration Down undoes by default.
func (m *Migrator) newestSet(ctx context.Context) (Set, error) {
	v, err := m.providers[SetService].GetDBVersion(ctx)
	if err != nil {
		return "", fmt.Errorf("service migration version: %w", err)
	}
	if v > 0 {
		return SetService, nil
	}
	return SetOutbox, nil
}

func tag(set Set, res []*goose.MigrationResult) []SetResult {
	out := make([]SetResult, len(res))
	for i, r := range res {
		out[i] = SetResult{Set: set, Result: r}
	}
	return out
}
