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
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/database"
)

// pgBinDirDefault is where Debian and Ubuntu install PostgreSQL 15's server
// binaries; OUTBOXD_PG_BIN overrides it.
const pgBinDirDefault = "/usr/lib/postgresql/15/bin"

// cluster is a PostgreSQL server of the soak's own, made with initdb in a
// temporary directory, so that stopping it disturbs no other test.
type cluster struct {
	bin     string
	dir     string // data directory
	sockDir string
	logFile string
	port    int
	runAs   []string // runuser prefix when the test runs as root
}

// newCluster initialises and starts a cluster on a free loopback port with
// trust authentication. PostgreSQL refuses to run as root, so as root every
// server binary runs as the postgres OS user. The cluster is stopped and
// removed when t ends.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	bin := os.Getenv("OUTBOXD_PG_BIN")
	if bin == "" {
		bin = pgBinDirDefault
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
		t.Skipf("no PostgreSQL server binaries in %s (set OUTBOXD_PG_BIN): %v", bin, err)
	}
	// Not t.TempDir: its parents are private to the test's user, and the
	// postgres user must reach the data directory.
	root, err := os.MkdirTemp("", "outboxd-soak-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	require.NoError(t, os.Chmod(root, 0o755))

	c := &cluster{
		bin:     bin,
		dir:     filepath.Join(root, "data"),
		sockDir: filepath.Join(root, "run"),
		logFile: filepath.Join(root, "run", "postgres.log"),
		port:    freePort(t),
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
	c.run(t, "initdb", "-D", c.dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	c.start(t)
	t.Cleanup(c.stopQuietly)
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
	c.run(t, "pg_ctl", "-D", c.dir, "-l", c.logFile, "-w", "-t", "60", "-o", opts, "start")
}

// stop shuts the server down at once, disconnecting every client: what a
// restart looks like to them.
func (c *cluster) stop(t *testing.T) {
	t.Helper()
	c.run(t, "pg_ctl", "-D", c.dir, "-m", "fast", "-w", "-t", "60", "stop")
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
