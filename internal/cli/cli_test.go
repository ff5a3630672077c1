package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/cli"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/status"
	"github.com/outboxd/outboxd/internal/testlog"
	"github.com/outboxd/outboxd/outbox"
)

// run runs outboxd with args and returns its exit code, stdout and stderr.
func run(ctx context.Context, args ...string) (int, string, string) {
	var stdout, stderr testlog.Buffer
	code := cli.Main(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// start runs outboxd in the background; stop cancels it (as SIGTERM does)
// and returns its exit code and stderr.
func start(t *testing.T, args ...string) (stop func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr testlog.Buffer
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, args, &testlog.Buffer{}, &stderr) }()
	var once sync.Once
	var code int
	stop = func() (int, string) {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(15 * time.Second):
				t.Fatalf("outboxd %s did not stop within 15s of cancel; stderr:\n%s", args[0], stderr.String())
			}
		})
		return code, stderr.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func statusJSON(t *testing.T, dsn string) status.Report {
	t.Helper()
	code, out, errOut := run(context.Background(), "status", "--json", "--database-url", dsn)
	require.Equal(t, 0, code, errOut)
	var r status.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	return r
}

func TestStatusJSONMatchesTheTableBeforeAndAfterADrain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Connect(t, dsn)

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, outbox.EnqueueTx(ctx, tx,
		outbox.Message{Topic: "a.happened"}, outbox.Message{Topic: "a.happened"}, outbox.Message{Topic: "a.happened"},
		outbox.Message{Topic: "b.happened"}, outbox.Message{Topic: "b.happened"},
	))
	require.NoError(t, tx.Commit(ctx))

	before := statusJSON(t, dsn)
	require.Equal(t, int64(5), before.Pending)
	require.Equal(t, []status.TopicBacklog{
		{Topic: "a.happened", Pending: 3, OldestPendingAgeSeconds: before.Backlog[0].OldestPendingAgeSeconds},
		{Topic: "b.happened", Pending: 2, OldestPendingAgeSeconds: before.Backlog[1].OldestPendingAgeSeconds},
	}, before.Backlog)
	require.Nil(t, before.Relay)
	require.Empty(t, before.DeadLetters)

	// Drain with the real relay command, publishing to watermill-sql tables
	// in the same database: no external broker needed.
	stop := start(t, "relay", "--database-url", dsn, "--broker", "postgres", "--admin-addr", freeAddr(t))
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n))
		return n == 0
	}, 20*time.Second, 20*time.Millisecond, "the relay drains the outbox")

	after := statusJSON(t, dsn)
	require.Zero(t, after.Pending)
	require.Empty(t, after.Backlog)
	require.NotNil(t, after.Relay, "the active relay is reported")
	require.Less(t, after.Relay.HeartbeatAgeSeconds, 30.0)

	code, errOut := stop()
	require.Equal(t, 0, code, "SIGTERM-like cancel exits 0; stderr:\n%s", errOut)

	code, text, errOut := run(ctx, "status", "--database-url", dsn)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, text, "0 pending")
	require.Contains(t, text, after.Relay.Name)
}

func TestAPIServesSignupsAndStopsCleanly(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	addr := freeAddr(t)
	stop := start(t, "api", "--database-url", dsn, "--http-addr", addr, "--argon2-memory-kib", "64", "--argon2-iterations", "1")

	var resp *http.Response
	require.Eventually(t, func() bool {
		r, err := http.Post("http://"+addr+"/v1/signup", "application/json",
			strings.NewReader(`{"email":"ann@example.com","name":"Ann","password":"correct horse"}`))
		if err != nil {
			return false
		}
		resp = r
		return true
	}, 10*time.Second, 20*time.Millisecond)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	code, errOut := stop()
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, errOut, "correct horse", "no password in logs")
}

func TestUnreachableDatabaseFailsInOneLine(t *testing.T) {
	t.Parallel()
	code, _, errOut := run(context.Background(), "migrate", "up",
		"--database-url", "postgres://app:hunter2-secret@127.0.0.1:1/outbox?connect_timeout=2")
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
	require.Contains(t, errOut, "127.0.0.1:1/outbox")
	require.Contains(t, errOut, "pg_ctlcluster")
	require.NotContains(t, errOut, "hunter2-secret")
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	code, _, errOut := run(context.Background(), "no-such-command")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "no-such-command")
	code, _, errOut = run(context.Background(), "relay", "--broker", "carrier-pigeon")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "nats")
}
