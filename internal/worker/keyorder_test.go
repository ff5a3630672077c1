package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/event"
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
	b, tr, ctx := startBurst(t, cfg, 1)

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

	for _, ev := range users {
		rows, err := b.pool.Query(context.Background(),
			`SELECT message_id FROM audit_log WHERE subject = $1 ORDER BY id`, ev.UserID.String())
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		require.NoError(t, err)
		require.Equal(t, want[ev.UserID], got, "audit records of user %s out of arrival order", ev.UserID)
	}
	require.Greater(t, metric(t, b.reg, "outboxd_worker_messages_handled_total", worker.HandlerAudit), 0.0)
}
