// Package pgtest gives each test its own PostgreSQL database, cloned from a
// migrated template so that tests are isolated, fast and can run in parallel.
//
// The server is the one named by OUTBOXD_TEST_DATABASE_URL (an admin DSN,
// default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable).
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/database"
	"github.com/outboxd/outboxd/migrations"
	"github.com/outboxd/outboxd/outbox/schema"
)

// EnvAdminURL names the variable that points tests at a PostgreSQL server.
const EnvAdminURL = "OUTBOXD_TEST_DATABASE_URL"

const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

const startHint = "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"

var template struct {
	once sync.Once
	name string
	err  error
}

// AdminURL is the DSN of the test server's maintenance database.
func AdminURL() string {
	if u := os.Getenv(EnvAdminURL); u != "" {
		return u
	}
	return defaultAdminURL
}

// NewDatabase creates a migrated database for t alone and returns its DSN.
// The database is dropped when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	dsn, drop, err := Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// Create makes a migrated database outside of any test (for TestMain and
// examples) and returns its DSN and a function that drops it.
func Create(ctx context.Context) (dsn string, drop func() error, err error) {
	template.once.Do(func() { template.name, template.err = buildTemplate() })
	if template.err != nil {
		return "", nil, template.err
	}
	return createDatabase(ctx, "TEMPLATE "+pgx.Identifier{template.name}.Sanitize())
}

// CreateEmpty makes an empty database (no migrations) outside of any test
// and returns its DSN and a function that drops it.
func CreateEmpty(ctx context.Context) (dsn string, drop func() error, err error) {
	return createDatabase(ctx, "TEMPLATE template0")
}

// NewEmptyDatabase creates an empty database (no migrations) for t alone and
// returns its DSN. It is dropped when t ends.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	dsn, drop, err := CreateEmpty(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// NewDatabaseURL returns the DSN of a database that does not exist yet, for
// tests of code that creates its database. It is dropped, if it exists, when
// t ends.
func NewDatabaseURL(t testing.TB) string {
	t.Helper()
	name := "outboxd_test_" + randomSuffix()
	dsn, err := databaseURL(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(name); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// NewPool returns a pool on a fresh migrated database, closed when t ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return Connect(t, NewDatabase(t))
}

// Connect opens a pool on dsn, closed when t ends.
func Connect(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := database.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func createDatabase(ctx context.Context, from string) (dsn string, drop func() error, err error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	admin, err := connectAdmin(ctx)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close(ctx)

	name := "outboxd_test_" + randomSuffix()
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident+" "+from); err != nil {
		return "", nil, fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	drop = func() error { return dropDatabase(name) }
	dsn, err = databaseURL(name)
	if err != nil {
		_ = drop()
		return "", nil, err
	}
	return dsn, drop, nil
}

func dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := connectAdmin(ctx)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	// A database with a logical replication slot cannot be dropped, and
	// slots belong to the cluster: a relay test in WAL mode leaves one.
	if err := dropSlots(ctx, admin, name); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// dropSlots drops the replication slots of database name, ending the
// walsenders that hold them.
func dropSlots(ctx context.Context, admin *pgx.Conn, name string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := admin.Exec(ctx, `
SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active`, name)
		if err == nil {
			_, err = admin.Exec(ctx, `
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, name)
		}
		var left int
		if err == nil {
			err = admin.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE database = $1`, name).Scan(&left)
		}
		if err == nil && left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: drop replication slots of %s: %d left (%v)", name, left, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// databaseURL is the admin DSN pointed at database name.
func databaseURL(name string) (string, error) {
	cfg, err := pgx.ParseConfig(AdminURL())
	if err != nil {
		return "", fmt.Errorf("pgtest: parse %s: %w", EnvAdminURL, err)
	}
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Path: "/" + name, RawQuery: "sslmode=disable"}
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	} else {
		u.User = url.User(cfg.User)
	}
	return u.String(), nil
}

func connectAdmin(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(AdminURL())
	if err != nil {
		return nil, fmt.Errorf("pgtest: parse %s: %w", EnvAdminURL, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgtest: cannot reach PostgreSQL at %s:%d (%s); %s",
			cfg.Host, cfg.Port, EnvAdminURL, startHint)
	}
	return conn, nil
}

// buildTemplate creates, once per set of migration files, a migrated
// template database. Test binaries of several packages run at once, so the
// build is serialized by an advisory lock and published by a rename.
func buildTemplate() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "outboxd_template_" + sum
	admin, err := connectAdmin(ctx)
	if err != nil {
		return "", err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(hashtext('outboxd pgtest template'))"); err != nil {
		return "", fmt.Errorf("pgtest: lock template: %w", err)
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock(hashtext('outboxd pgtest template'))") //nolint:errcheck

	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("pgtest: look up template: %w", err)
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	ident := pgx.Identifier{building}.Sanitize()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("pgtest: drop stale template: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("pgtest: create template: %w", err)
	}
	if err := migrate(ctx, building); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+ident+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: publish template: %w", err)
	}
	return name, nil
}

func migrate(ctx context.Context, dbname string) error {
	cfg, err := pgxpool.ParseConfig(AdminURL())
	if err != nil {
		return fmt.Errorf("pgtest: parse %s: %w", EnvAdminURL, err)
	}
	cfg.ConnConfig.Database = dbname
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pgtest: connect template: %w", err)
	}
	defer pool.Close()
	m, err := database.NewMigrator(pool, nil)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

func migrationsHash() (string, error) {
	h := sha256.New()
	for _, fsys := range []fs.FS{schema.FS, migrations.FS} {
		err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(fsys, path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
			h.Write(b)
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("pgtest: hash migrations: %w", err)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
