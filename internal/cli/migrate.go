package cli

import (
	"context"
	"fmt"

	"github.com/outboxd/outboxd/internal/database"
)

// MigrateCmd applies or rolls back the embedded migrations: the outbox
// library's set and outboxd's own.
type MigrateCmd struct {
	Up     MigrateUpCmd     `cmd:"" default:"1" help:"Apply every pending migration, the outbox library's set first (the default)."`
	Down   MigrateDownCmd   `cmd:"" help:"Roll back the newest migration of one set (the service's while it has any applied, else the outbox library's)."`
	Status MigrateStatusCmd `cmd:"" help:"List the migrations of both sets and whether each is applied."`
}

// MigrateUpCmd applies every pending migration.
type MigrateUpCmd struct{}

// MigrateDownCmd rolls back the newest applied migration of a set.
type MigrateDownCmd struct {
	Set string `name:"set" enum:",outbox,service" default:"" help:"Set to roll back: outbox (the library's tables) or service (outboxd's); default: service while it has any applied, else outbox."`
}

// MigrateStatusCmd lists the migrations and their state.
type MigrateStatusCmd struct{}

// Run applies every pending migration.
func (MigrateUpCmd) Run(ctx context.Context, g *Globals) error {
	return withMigrator(ctx, g, func(m *database.Migrator) error {
		res, err := m.Up(ctx)
		for _, r := range res {
			fmt.Fprintf(g.stdout, "%s: applied %s\n", r.Set, r.Result.Source.Path)
		}
		if err != nil {
			return err
		}
		if len(res) == 0 {
			fmt.Fprintln(g.stdout, "database is up to date")
		}
		return nil
	})
}

// Run rolls back the newest applied migration of the set.
func (c MigrateDownCmd) Run(ctx context.Context, g *Globals) error {
	set, err := database.ParseSet(c.Set)
	if err != nil {
		return err
	}
	return withMigrator(ctx, g, func(m *database.Migrator) error {
		res, err := m.Down(ctx, set)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "%s: rolled back %s\n", res.Set, res.Result.Source.Path)
		return nil
	})
}

// Run prints each migration, its set and whether it is applied.
func (MigrateStatusCmd) Run(ctx context.Context, g *Globals) error {
	return withMigrator(ctx, g, func(m *database.Migrator) error {
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range st {
			state := "pending"
			if !s.Status.AppliedAt.IsZero() {
				state = "applied " + s.Status.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(g.stdout, "%-8s %-45s %s\n", s.Set, s.Status.Source.Path, state)
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
