package cli

import (
	"context"
	"fmt"

	"github.com/outboxd/outboxd/internal/database"
)

// MigrateCmd applies or rolls back the embedded migrations.
type MigrateCmd struct {
	Up     MigrateUpCmd     `cmd:"" default:"1" help:"Apply every pending migration (the default)."`
	Down   MigrateDownCmd   `cmd:"" help:"Roll back the newest migration."`
	Status MigrateStatusCmd `cmd:"" help:"List migrations and whether each is applied."`
}

// MigrateUpCmd applies every pending migration.
type MigrateUpCmd struct{}

// MigrateDownCmd rolls back the newest applied migration.
type MigrateDownCmd struct{}

// MigrateStatusCmd lists the migrations and their state.
type MigrateStatusCmd struct{}

// Run applies every pending migration.
func (MigrateUpCmd) Run(ctx context.Context, g *Globals) error {
	return withMigrator(ctx, g, func(m *database.Migrator) error {
		res, err := m.Up(ctx)
		if err != nil {
			return err
		}
		for _, r := range res {
			fmt.Fprintf(g.stdout, "applied %s\n", r.Source.Path)
		}
		if len(res) == 0 {
			fmt.Fprintln(g.stdout, "database is up to date")
		}
		return nil
	})
}

// Run rolls back the newest applied migration.
func (MigrateDownCmd) Run(ctx context.Context, g *Globals) error {
	return withMigrator(ctx, g, func(m *database.Migrator) error {
		res, err := m.Down(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "rolled back %s\n", res.Source.Path)
		return nil
	})
}

// Run prints each migration and whether it is applied.
func (MigrateStatusCmd) Run(ctx context.Context, g *Globals) error {
	return withMigrator(ctx, g, func(m *database.Migrator) error {
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range st {
			state := "pending"
			if !s.AppliedAt.IsZero() {
				state = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(g.stdout, "%-45s %s\n", s.Source.Path, state)
		}
		return nil
	})
}

func withMigrator(ctx context.Context, g *Globals, fn func(*database.Migrator) error) error {
	pool, err := g.Pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := database.NewMigrator(pool, g.Logger())
	if err != nil {
		return err
	}
	defer m.Close()
	return fn(m)
}
