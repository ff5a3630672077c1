package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/database"
	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/mail/mailtest"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/testlog"
	"github.com/outboxd/outboxd/internal/worker"
)

// The test binary re-executed with envChild=worker runs a worker process
// against the database, broker and mail server named by these variables.
const (
	envChild     = "OUTBOXD_TEST_CHILD"
	envChildDSN  = "OUTBOXD_TEST_CHILD_DSN"
	envChildNATS = "OUTBOXD_TEST_CHILD_NATS_URL"
	envChildSMTP = "OUTBOXD_TEST_CHILD_SMTP_ADDR"
)

// childAckTimeout lets the broker redeliver what a killed worker held
// within seconds rather than the default 30.
const childAckTimeout = 2 * time.Second

// childMain is the worker process of TestWorkerSurvivesKill9: it runs until
// SIGTERM (or dies of SIGKILL) and exits non-zero on any error.
func childMain() int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if os.Getenv(envChild) != "worker" {
		logger.Error("unknown child role", "role", os.Getenv(envChild))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := runChild(ctx, logger); err != nil {
		logger.Error("child worker failed", "error", err)
		return 1
	}
	return 0
}

func runChild(ctx context.Context, logger *slog.Logger) error {
	pool, err := database.Open(ctx, os.Getenv(envChildDSN))
	if err != nil {
		return err
	}
	defer pool.Close()
	mailer, err := mail.NewSMTP(mail.SMTPConfig{
		Addr: os.Getenv(envChildSMTP), From: "outboxd <noreply@outboxd.test>", Logger: logger,
	})
	if err != nil {
		return err
	}
	defer func() { _ = mailer.Close() }()
	// As outboxd worker does: each subscription hands on as many messages
	// as a handler works on at once.
	bcfg := broker.Config{Kind: broker.KindNATS, URL: os.Getenv(envChildNATS), AckTimeout: childAckTimeout,
		InFlight: worker.ConcurrencyDefault, Logger: logger}
	w, err := worker.New(pool, func(ctx context.Context, group string) (message.Subscriber, error) {
		return broker.NewSubscriber(ctx, bcfg, group)
	}, mailer, worker.Config{Logger: logger, HandlerTimeout: time.Second})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// child is a worker process started from the test binary.
type child struct {
	cmd  *exec.Cmd
	logs *testlog.Buffer
	done chan error
}

// childApp is the application_name of the child workers' database
// sessions, by which the test sees their transactions.
const childApp = "outboxd-test-child-worker"

func startChild(t *testing.T, dsn, natsURL, smtpAddr string) *child {
	t.Helper()
	dsn += "&application_name=" + childApp
	c := &child{logs: &testlog.Buffer{}, done: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(),
		envChild+"=worker", envChildDSN+"="+dsn, envChildNATS+"="+natsURL, envChildSMTP+"="+smtpAddr)
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	require.NoError(t, c.cmd.Start())
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("child %d logs:\n%s", c.cmd.Process.Pid, c.logs.String())
		}
	})
	return c
}

func (c *child) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case err := <-c.done:
		require.Error(t, err, "a killed process exits with an error")
		c.done <- err // for cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("child did not die of SIGKILL")
	}
}

func (c *child) terminate(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-c.done:
		require.NoError(t, err, "graceful stop on SIGTERM")
		c.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("child did not stop on SIGTERM")
	}
}

// TestWorkerSurvivesKill9 kills a worker process with SIGKILL in the middle
// of a batch (a transaction of a database handler open) while it drains a
// backlog, and starts a new one: every database effect is present exactly
// once, and every mail at least once, a repeat keeping its Message-ID.
func TestWorkerSurvivesKill9(t *testing.T) {
	t.Parallel()
	bcfg := startNATS(t)
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Connect(t, dsn)
	smtp := mailtest.NewServer(t, mailtest.Options{})
	pub := publisher(t, bcfg)

	const n = 1500
	want := make(map[string]bool, n)
	msgs := make([]*message.Message, 0, n)
	for i := range n {
		ev := newEvent(fmt.Sprintf("User %d", i))
		insertUser(t, pool, ev)
		id := uuid.New()
		want[mail.MessageID(id)] = true
		msgs = append(msgs, newMessage(t, id, ev, fmt.Sprintf("req-%d", i)))
	}
	require.NoError(t, pub.Publish(event.TopicUserCreated, msgs...))

	first := startChild(t, dsn, bcfg.URL, smtp.Addr())
	// The kill lands once a tenth of the profiles are written, while one
	// of the child's sessions is inside a transaction (a batch being
	// written), looked at every millisecond.
	require.True(t, assertEventually(60*time.Second, func() bool {
		return count(t, pool, `SELECT count(*) FROM profiles`) >= n/10
	}), "a tenth of the profiles written")
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for count(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state IN ('active', 'idle in transaction') AND xact_start IS NOT NULL AND backend_type = 'client backend' AND pid <> pg_backend_pid()`, childApp) == 0 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("never saw the worker inside a batch's transaction within 10s")
		}
	}
	first.kill9(t)
	profiles, audits := count(t, pool, `SELECT count(*) FROM profiles`), count(t, pool, `SELECT count(*) FROM audit_log`)
	require.Less(t, profiles, n, "the kill must land mid-stream")
	t.Logf("killed inside a batch after %d mails, %d profiles, %d audit records", len(smtp.Received()), profiles, audits)

	second := startChild(t, dsn, bcfg.URL, smtp.Addr())
	waitCount(t, pool, 3*n, 90*time.Second, `SELECT count(*) FROM inbox`)
	second.terminate(t)

	require.Equal(t, n, count(t, pool, `SELECT count(*) FROM profiles`))
	require.Equal(t, n, count(t, pool, `SELECT count(*) FROM audit_log`))
	require.Equal(t, n, count(t, pool, `SELECT count(DISTINCT message_id) FROM audit_log`))
	require.Zero(t, count(t, pool, `SELECT count(*) FROM dead_letters`))

	perID := map[string]int{}
	for _, m := range smtp.Received() {
		require.True(t, want[m.MessageID], "unexpected Message-ID %s", m.MessageID)
		perID[m.MessageID]++
	}
	require.Len(t, perID, n, "every user got a welcome mail")
	repeats := 0
	for _, k := range perID {
		repeats += k - 1
	}
	// Only mails in flight at the kill (sent, not yet recorded) may repeat:
	// at most one per message the email handler held.
	require.LessOrEqual(t, repeats, worker.ConcurrencyDefault, "at most the mails in flight at the kill are sent again")
}
