package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/worker"
)

// TestMessagesOfOneKeyAreHandledInOrder hands the audit handler many
// messages of a few keys at once; the append-only audit log must list each
// key's messages in the order they arrived, although the handler works on
// several messages at once and writes them in batches.
func TestMessagesOfOneKeyAreHandledInOrder(t *testing.T) {
	t.Parallel()
	cfg := fastRetries
	cfg.Handlers = []string{worker.HandlerAudit}
	cfg.Concurrency = 16
	b, tr, ctx := startBurst(t, setupOpts{cfg: cfg}, 1)

	const keys, perKey = 5, 40
	users := make([]event.UserCreated, keys)
	for i := range users {
		users[i] = newEvent("User")
	}
	want := map[uuid.UUID][]uuid.UUID{} // user → message ids in arrival order
	var msgs []*message.Message
	for range perKey {
		for _, ev := range users {
			id := uuid.New()
			want[ev.UserID] = append(want[ev.UserID], id)
			msgs = append(msgs, newMessage(t, id, ev, ""))
		}
	}
	tr.publish(ctx, msgs...)
	waitCount(t, b.pool, keys*perKey, 20*time.Second, `SELECT count(*) FROM audit_log`)

	requireAuditOrder(t, b.pool, want)
	require.Greater(t, metric(t, b.reg, "outboxd_worker_messages_handled_total", worker.HandlerAudit), 0.0)
}

// requireAuditOrder checks that the audit log lists each user's messages
// in the order of want (user → message ids), the order they were handed
// to the worker.
func requireAuditOrder(t *testing.T, pool *pgxpool.Pool, want map[uuid.UUID][]uuid.UUID) {
	t.Helper()
	for user, ids := range want {
		rows, err := pool.Query(context.Background(),
			`SELECT message_id FROM audit_log WHERE subject = $1 ORDER BY id`, user.String())
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		require.NoError(t, err)
		require.Equal(t, ids, got, "audit records of user %s out of the order they were handed over", user)
	}
}

// gateMailer holds every mail until release is closed, reporting each
// start on started.
type gateMailer struct {
	started chan string // the mail's Message-ID
	release chan struct{}
}

func (m *gateMailer) Send(ctx context.Context, ml mail.Mail) error {
	m.started <- ml.MessageID
	select {
	case <-m.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startedWithin collects the mails started until none comes for quiet.
func startedWithin(m *gateMailer, quiet time.Duration) []string {
	var ids []string
	for {
		select {
		case id := <-m.started:
			ids = append(ids, id)
		case <-time.After(quiet):
			return ids
		}
	}
}

func TestHandlerHoldsAtMostConcurrencyMessages(t *testing.T) {
	t.Parallel()
	gate := &gateMailer{started: make(chan string, 64), release: make(chan struct{})}
	cfg := worker.Config{Handlers: []string{worker.HandlerEmail}, Concurrency: 3}
	b, tr, ctx := startBurst(t, setupOpts{cfg: cfg, mailer: gate}, 1)

	var msgs []*message.Message
	for range 10 {
		msgs = append(msgs, newMessage(t, uuid.New(), newEvent("User"), ""))
	}
	tr.publish(ctx, msgs...)
	require.Len(t, startedWithin(gate, 300*time.Millisecond), 3, "no more than Concurrency messages at once")
	close(gate.release)
	require.Len(t, startedWithin(gate, time.Second), 7, "the rest follow as the first are acked")
	waitCount(t, b.pool, 10, 10*time.Second, `SELECT count(*) FROM inbox WHERE handler = 'email'`)
}

func TestMessageWaitsForTheOneOfItsKeyBeforeIt(t *testing.T) {
	t.Parallel()
	gate := &gateMailer{started: make(chan string, 64), release: make(chan struct{})}
	cfg := worker.Config{Handlers: []string{worker.HandlerEmail}}
	_, tr, ctx := startBurst(t, setupOpts{cfg: cfg, mailer: gate}, 1)

	ann, bo := newEvent("Ann"), newEvent("Bo")
	first, second, other := uuid.New(), uuid.New(), uuid.New()
	tr.publish(ctx, newMessage(t, first, ann, ""), newMessage(t, second, ann, ""), newMessage(t, other, bo, ""))
	require.ElementsMatch(t, []string{mail.MessageID(first), mail.MessageID(other)}, startedWithin(gate, 300*time.Millisecond),
		"the second message of Ann's key waits; Bo's does not")
	close(gate.release)
	require.Equal(t, []string{mail.MessageID(second)}, startedWithin(gate, time.Second))
}
