// Package database opens outboxd's PostgreSQL pool and applies its migrations.
package database

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Open parses dsn, connects a pool and checks that PostgreSQL answers. The
// error never contains the DSN's password.
func Open(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors quote the DSN, password included: say less.
		return nil, errors.New("parse DATABASE_URL: not a valid PostgreSQL connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", Address(cfg.ConnConfig.Config), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", Address(cfg.ConnConfig.Config), err)
	}
	return pool, nil
}

// Address is host:port/database of a connection config, for messages that
// must name the server but never its credentials.
func Address(cfg pgconn.Config) string {
	return net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)) + "/" + cfg.Database
}

// Redact returns dsn with any password replaced, or a placeholder when dsn
// does not parse.
func Redact(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "<invalid DATABASE_URL>"
	}
	return fmt.Sprintf("postgres://%s@%s", cfg.User, Address(*cfg))
}
