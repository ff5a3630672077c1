// Package database opens outboxd's PostgreSQL pool and applies its migrations.
package database

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Open parses dsn, connects a pool and checks that PostgreSQL answers. The
// error never contains the DSN's password.
func Open(ctx context.Context, dsn string, opts ...Option) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors quote the DSN, password included: say less.
		return nil, errors.New("parse DATABASE_URL: not a valid PostgreSQL connection string")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxConns > 0 && !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, o.maxConns)
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

// Option tunes Open.
type Option func(*options)

type options struct{ maxConns int32 }

// WithMaxConns raises the pool's size to n connections where pgx's default
// (the larger of 4 and the number of CPUs) is smaller, for a process that
// works on many things at once; pool_max_conns in the DSN wins.
func WithMaxConns(n int) Option {
	return func(o *options) { o.maxConns = int32(min(n, 1<<20)) }
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
