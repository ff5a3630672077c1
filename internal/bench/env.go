package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/database"
)

// poolMaxConns bounds the bench database's pool.
const poolMaxConns = 24

// env is what one benchmark run measures against: a fresh migrated database
// and a NATS server.
type env struct {
	cfg  Config
	pool *pgxpool.Pool
	// database is the run's database.
	database string
	// dsn names the run's database, for what connects on its own (the
	// watermill-sql publisher, the forwarder).
	dsn     string
	natsURL string
	closers []func()
}

// newEnv creates the run's database on cfg.DatabaseURL's server and starts
// an embedded NATS unless cfg.BrokerURL is set. close undoes both.
func newEnv(ctx context.Context, cfg Config) (e *env, err error) {
	e = &env{cfg: cfg}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	name := "outboxd_bench_" + randomHex(6)
	e.database = name
	adminCfg, err := pgx.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: not a valid PostgreSQL connection string")
	}
	adminCfg.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, adminCfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", database.Address(adminCfg.Config), err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create bench database: %w", err)
	}
	e.closers = append(e.closers, func() { dropDatabase(adminCfg, name) })

	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: not a valid PostgreSQL connection string")
	}
	poolCfg.ConnConfig.Database = name
	if e.dsn, err = withDatabase(cfg.DatabaseURL, name); err != nil {
		return nil, err
	}
	// More connections than cores serve nothing on a 2-core machine, and
	// the server allows 100 to everyone sharing it: 64 clients queue for
	// these, through the API and the raw SQL loop alike.
	poolCfg.MaxConns = poolMaxConns
	e.pool, err = pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("connect to bench database: %w", err)
	}
	e.closers = append(e.closers, e.pool.Close)
	m, err := database.NewMigrator(e.pool, nil)
	if err != nil {
		return nil, err
	}
	_, err = m.Up(ctx)
	_ = m.Close()
	if err != nil {
		return nil, err
	}

	e.natsURL = cfg.BrokerURL
	if e.natsURL == "" {
		dir, err := os.MkdirTemp("", "outboxd-bench-nats-")
		if err != nil {
			return nil, fmt.Errorf("embedded NATS store: %w", err)
		}
		e.closers = append(e.closers, func() { _ = os.RemoveAll(dir) })
		url, stop, err := broker.StartEmbeddedNATS(ctx, dir)
		if err != nil {
			return nil, err
		}
		e.natsURL = url
		e.closers = append(e.closers, stop)
	}
	return e, nil
}

// withDatabase returns dsn, a URL or a keyword/value connection string,
// naming database name instead of its own.
func withDatabase(dsn, name string) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " dbname=" + name, nil // a later keyword wins
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", errors.New("parse DATABASE_URL: not a valid PostgreSQL URL")
	}
	u.Path = "/" + name
	q := u.Query()
	q.Del("dbname")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// close releases everything in the reverse order of its making.
func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// brokerConfig addresses the run's NATS server.
func (e *env) brokerConfig() broker.Config {
	return broker.Config{Kind: broker.KindNATS, URL: e.natsURL, Logger: e.cfg.Logger}
}

// dropDatabase drops the run's database, closing connections left over,
// and its replication slots first: PostgreSQL refuses to drop a database
// that has one, and a slot left behind would pin WAL on the whole server.
func dropDatabase(adminCfg *pgx.ConnConfig, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.ConnectConfig(ctx, adminCfg)
	if err != nil {
		return
	}
	defer admin.Close(ctx)
	_ = dropSlots(ctx, admin, name)
	_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// querier is what dropSlots needs of a connection or a pool.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// dropSlots drops every replication slot of database, ending the
// walsenders that still stream them.
func dropSlots(ctx context.Context, db querier, database string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left int
		err := db.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE database = $1`, database).Scan(&left)
		if err == nil && left == 0 {
			return nil
		}
		if err == nil {
			_, err = db.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, database)
		}
		if err == nil {
			// A walsender just ended may hold its slot a moment more:
			// the next round drops it.
			_, err = db.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, database)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("drop the replication slots of %s: %d left after 10 s (%v)", database, left, err)
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// replicationConn opens a logical replication connection to the run's
// database.
func (e *env) replicationConn(ctx context.Context) (*pgconn.PgConn, error) {
	cfg := e.pool.Config().ConnConfig.Config.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["application_name"] = "outboxd bench raw pglogrepl"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect for replication: %w", err)
	}
	return conn, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// resetTables empties the tables a benchmark writes, so that each measured
// point starts alike.
func (e *env) resetTables(ctx context.Context) error {
	_, err := e.pool.Exec(ctx, `TRUNCATE users, outbox, idempotency_keys CASCADE`)
	if err != nil {
		return fmt.Errorf("reset tables: %w", err)
	}
	if _, err := e.pool.Exec(ctx, `VACUUM ANALYZE users`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	if _, err := e.pool.Exec(ctx, `VACUUM ANALYZE outbox`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}
