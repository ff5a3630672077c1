package soak_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/database"
)

// pgBinDirDefault is where Debian and Ubuntu install PostgreSQL 15's server
// binaries; OUTBOXD_PG_BIN overrides it.
const pgBinDirDefault = "/usr/lib/postgresql/15/bin"

// cluster is a PostgreSQL server of the soak's own, made with initdb (or
// pg_basebackup, for a standby) in a temporary directory, so that stopping
// it disturbs no other test.
type cluster struct {
	bin      string
	dir      string // data directory
	sockDir  string
	logFile  string
	port     int
	settings []string // name=value server settings given at every start
	runAs    []string // runuser prefix when the test runs as root
}

// walSettings let a cluster serve the relay's WAL capture (a logical slot
// per relay database, a walsender per stream) and stream to a standby.
var walSettings = []string{
	"wal_level=logical", "max_replication_slots=16", "max_wal_senders=16", "hot_standby=on",
}

// newCluster initialises and starts a cluster on a free loopback port with
// trust authentication (initdb's pg_hba.conf lets replication connections
// of 127.0.0.1 in too) and the given name=value server settings. The
// cluster is stopped and removed when t ends.
func newCluster(t *testing.T, settings ...string) *cluster {
	t.Helper()
	c := prepareCluster(t, settings)
	c.run(t, "initdb", "-D", c.dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	c.start(t)
	t.Cleanup(c.stopQuietly)
	return c
}

// newStandby makes a streaming standby of primary with pg_basebackup on a
// free port of its own, with primary's settings, and starts it: it follows
// primary, read-only, until promoted. It is stopped and removed when t ends.
func newStandby(t *testing.T, primary *cluster) *cluster {
	t.Helper()
	c := prepareCluster(t, primary.settings)
	// -R writes standby.signal and primary_conninfo; -X stream copies the
	// WAL written meanwhile over a second connection.
	c.run(t, "pg_basebackup", "-R", "-D", c.dir, "-h", "127.0.0.1", "-p", strconv.Itoa(primary.port),
		"-U", "postgres", "-X", "stream", "--checkpoint=fast", "--no-sync")
	c.start(t)
	t.Cleanup(c.stopQuietly)
	return c
}

// prepareCluster makes the directories of a cluster and picks its port.
// PostgreSQL refuses to run as root, so as root every server binary runs as
// the postgres OS user, who owns the directories. Without the server
// binaries the test fails, saying what to install: CI has them.
func prepareCluster(t *testing.T, settings []string) *cluster {
	t.Helper()
	bin := os.Getenv("OUTBOXD_PG_BIN")
	if bin == "" {
		bin = pgBinDirDefault
	}
	for _, name := range []string{"initdb", "pg_ctl", "pg_basebackup"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			t.Fatalf("no PostgreSQL 15 server binaries in %s: install package postgresql-15 (apt-get install postgresql-15), or set OUTBOXD_PG_BIN to the directory of initdb, pg_ctl and pg_basebackup", bin)
		}
	}
	// Not t.TempDir: its parents are private to the test's user, and the
	// postgres user must reach the data directory.
	root, err := os.MkdirTemp("", "outboxd-soak-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	require.NoError(t, os.Chmod(root, 0o755))

	c := &cluster{
		bin:      bin,
		dir:      filepath.Join(root, "data"),
		sockDir:  filepath.Join(root, "run"),
		logFile:  filepath.Join(root, "run", "postgres.log"),
		port:     freePort(t),
		settings: settings,
	}
	require.NoError(t, os.Mkdir(c.sockDir, 0o755))
	require.NoError(t, os.Mkdir(c.dir, 0o700))
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		require.NoError(t, err, "running as root needs a postgres OS user to run the server as")
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		require.NoError(t, os.Chown(c.sockDir, uid, gid))
		require.NoError(t, os.Chown(c.dir, uid, gid))
		c.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	return c
}

// run runs a server binary, as postgres when the test is root, and fails the
// test with its output if it fails.
func (c *cluster) run(t *testing.T, name string, args ...string) {
	t.Helper()
	argv := append(append([]string{}, c.runAs...), append([]string{filepath.Join(c.bin, name)}, args...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		logs, _ := os.ReadFile(c.logFile)
		t.Fatalf("%s failed: %v\n%s\nserver log:\n%s", name, err, out.String(), logs)
	}
}

// start starts the server and returns once it accepts connections.
func (c *cluster) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", c.port, c.sockDir)
	for _, s := range c.settings {
		opts += " -c " + s
	}
	c.run(t, "pg_ctl", "-D", c.dir, "-l", c.logFile, "-w", "-t", "60", "-o", opts, "start")
}

// stop shuts the server down at once, disconnecting every client: what a
// restart looks like to them.
func (c *cluster) stop(t *testing.T) {
	t.Helper()
	c.run(t, "pg_ctl", "-D", c.dir, "-m", "fast", "-w", "-t", "60", "stop")
}

// crash stops the server the way a power cut or a killed machine would:
// no shutdown checkpoint, no goodbye to the clients or to a standby.
func (c *cluster) crash(t *testing.T) {
	t.Helper()
	c.run(t, "pg_ctl", "-D", c.dir, "-m", "immediate", "-w", "-t", "60", "stop")
}

// promote ends a standby's recovery and returns once it accepts writes.
func (c *cluster) promote(t *testing.T) {
	t.Helper()
	c.run(t, "pg_ctl", "-D", c.dir, "-w", "-t", "60", "promote")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.adminURL())
		if err == nil {
			var inRecovery bool
			err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery)
			_ = conn.Close(ctx)
			if err == nil && !inRecovery {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("standby on port %d still in recovery after pg_ctl promote: %v", c.port, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopQuietly stops the server if it runs, for cleanups.
func (c *cluster) stopQuietly() {
	argv := append(append([]string{}, c.runAs...), filepath.Join(c.bin, "pg_ctl"), "-D", c.dir, "-m", "immediate", "-w", "stop")
	_ = exec.Command(argv[0], argv[1:]...).Run()
}

// adminURL is the DSN of the cluster's maintenance database.
func (c *cluster) adminURL() string { return c.url("postgres") }

func (c *cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// createPool is createMigrated with a pool on the new database, closed
// when t ends.
func (c *cluster) createPool(t *testing.T, name string) (dsn string, pool *pgxpool.Pool) {
	t.Helper()
	dsn = c.createMigrated(t, name)
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return dsn, pool
}

// startNATS runs an embedded NATS JetStream server until t ends and
// returns its URL.
func startNATS(t *testing.T) string {
	t.Helper()
	natsURL, stop, err := broker.StartEmbeddedNATS(context.Background(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(stop)
	return natsURL
}

// createMigrated creates database name and applies outboxd's migrations.
func (c *cluster) createMigrated(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.adminURL())
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	dsn := c.url(name)
	pool, err := database.Open(ctx, dsn)
	require.NoError(t, err)
	defer pool.Close()
	m, err := database.NewMigrator(pool, nil)
	require.NoError(t, err)
	defer m.Close()
	_, err = m.Up(ctx)
	require.NoError(t, err)
	return dsn
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
