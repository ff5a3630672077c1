package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/deadletter"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/mail/mailtest"
	"github.com/outboxd/outboxd/internal/worker"
	"github.com/outboxd/outboxd/outbox"
)

// fastRetries makes failing tests quick: 2 retries 10 ms apart.
var fastRetries = worker.Config{MaxRetries: 2, RetryInitialInterval: 10 * time.Millisecond, RetryMaxInterval: 20 * time.Millisecond}

func deadLetters(t *testing.T, b *testBundle, f deadletter.Filter) []deadletter.DeadLetter {
	t.Helper()
	letters, err := deadletter.List(context.Background(), b.pool, f)
	require.NoError(t, err)
	return letters
}

func TestPoisonMessageIsDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: fastRetries})
	b.start(t)

	poisonID := uuid.New()
	poison := message.NewMessage(poisonID.String(), []byte(`{"user_id": 42`))
	poison.Metadata.Set(outbox.MetadataCorrelationID, "req-poison")
	noID := message.NewMessage("not-a-uuid", []byte(`{}`))
	ev := newEvent("Ann")
	insertUser(t, b.pool, ev)
	goodID := uuid.New()
	b.publish(t, poison, noID, newMessage(t, goodID, ev, ""))

	// The good message behind the poison ones flows through every handler.
	waitProcessed(t, b.pool, goodID, 3, 10*time.Second)
	waitCount(t, b.pool, 6, 10*time.Second, `SELECT count(*) FROM dead_letters`)

	letters := deadLetters(t, b, deadletter.Filter{MessageID: poisonID})
	require.Len(t, letters, 3, "every handler dead-letters it")
	for _, d := range letters {
		require.Equal(t, 1, d.Attempts, "%s: a payload that does not decode burns no retries", d.Handler)
		require.Contains(t, d.Error, "poison message")
		require.Equal(t, "user.created", d.Topic)
		require.Equal(t, []byte(poison.Payload), d.Payload)
		require.Equal(t, "req-poison", d.Metadata[outbox.MetadataCorrelationID])
	}
	for _, d := range deadLetters(t, b, deadletter.Filter{}) {
		if d.MessageID != poisonID {
			require.Contains(t, d.Error, "no message id")
		}
	}
	for _, h := range worker.AllHandlers {
		require.Equal(t, 2.0, metric(t, b.reg, "outboxd_worker_messages_dead_lettered_total", h), h)
		require.Zero(t, metric(t, b.reg, "outboxd_worker_messages_retried_total", h), h)
	}
	require.Len(t, b.smtp.Received(), 1)
}

func TestFailingMessageIsRetriedDeadLetteredAndReplayed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{cfg: fastRetries})
	b.start(t)

	// No users row: the profile's foreign key fails on every attempt.
	orphan := newEvent("Ann")
	orphanID := uuid.New()
	b.publish(t, newMessage(t, orphanID, orphan, "req-orphan"))

	require.True(t, assertEventually(10*time.Second, func() bool {
		return len(deadLetters(t, b, deadletter.Filter{})) == 1
	}))
	d := deadLetters(t, b, deadletter.Filter{})[0]
	require.Equal(t, worker.HandlerProfile, d.Handler)
	require.Equal(t, orphanID, d.MessageID)
	require.Equal(t, 3, d.Attempts, "one attempt and MaxRetries retries")
	require.Contains(t, d.Error, "foreign key")
	require.Equal(t, 2.0, metric(t, b.reg, "outboxd_worker_messages_retried_total", worker.HandlerProfile))
	require.Equal(t, 3.0, metric(t, b.reg, "outboxd_worker_messages_failed_total", worker.HandlerProfile))
	require.Equal(t, 1.0, metric(t, b.reg, "outboxd_worker_messages_dead_lettered_total", worker.HandlerProfile))

	// The other handlers processed it, and the profile handler goes on.
	waitCount(t, b.pool, 2, 10*time.Second, `SELECT count(*) FROM inbox WHERE message_id = $1`, orphanID)
	next := newEvent("Bo")
	insertUser(t, b.pool, next)
	nextID := uuid.New()
	b.publish(t, newMessage(t, nextID, next, ""))
	waitProcessed(t, b.pool, nextID, 3, 10*time.Second)

	// Fix the cause and replay: the message is back in the outbox, same id.
	insertUser(t, b.pool, orphan)
	n, err := deadletter.Replay(ctx, b.pool, d.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.Empty(t, deadLetters(t, b, deadletter.Filter{}))

	// The relay would publish the outbox row now; do what it does.
	var (
		id         uuid.UUID
		topic, key string
		payload    []byte
		md         map[string]string
	)
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT message_id, topic, key, payload, metadata FROM outbox`).
		Scan(&id, &topic, &key, &payload, &md))
	require.Equal(t, orphanID, id)
	require.Equal(t, orphan.UserID.String(), key)
	require.Equal(t, "req-orphan", md[outbox.MetadataCorrelationID])
	msg := message.NewMessage(id.String(), payload)
	msg.Metadata = md
	msg.Metadata.Set(outbox.MetadataMessageID, id.String())
	msg.Metadata.Set(outbox.MetadataKey, key)
	require.NoError(t, b.pubsub.Publish(topic, msg))

	waitProcessed(t, b.pool, orphanID, 3, 10*time.Second)
	require.Equal(t, 1, count(t, b.pool, `SELECT count(*) FROM profiles WHERE user_id = $1`, orphan.UserID))
	require.True(t, assertEventually(10*time.Second, func() bool {
		return metric(t, b.reg, "outboxd_worker_messages_duplicate_total", worker.HandlerAudit) == 1 &&
			metric(t, b.reg, "outboxd_worker_messages_duplicate_total", worker.HandlerEmail) == 1
	}), "the handlers that had processed it skip the replay")
	require.Equal(t, 1, count(t, b.pool, `SELECT count(*) FROM audit_log WHERE message_id = $1`, orphanID))
	mails := b.smtp.Received()
	require.Len(t, mails, 2, "one welcome mail per user, none again on replay")
}

func TestPanicBecomesAnError(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: fastRetries, mailer: panickingMailer{}})
	b.start(t)
	ev := newEvent("Ann")
	insertUser(t, b.pool, ev)
	id := uuid.New()
	b.publish(t, newMessage(t, id, ev, ""))

	require.True(t, assertEventually(10*time.Second, func() bool {
		return len(deadLetters(t, b, deadletter.Filter{Handler: worker.HandlerEmail})) == 1
	}))
	d := deadLetters(t, b, deadletter.Filter{})[0]
	require.Equal(t, 3, d.Attempts, "a panic is retried like any failure")
	require.Contains(t, d.Error, "handler panicked: mail server exploded")
	require.NotContains(t, d.Error, "goroutine", "the stack goes to the log, not the dead letter")

	// The worker is still up and handling.
	waitProcessed(t, b.pool, id, 2, 10*time.Second)
	next := newEvent("Bo")
	insertUser(t, b.pool, next)
	nextID := uuid.New()
	b.publish(t, newMessage(t, nextID, next, ""))
	waitCount(t, b.pool, 2, 10*time.Second, `SELECT count(*) FROM audit_log`)
	require.Contains(t, b.logs.String(), "handler panicked")
}

type panickingMailer struct{}

func (panickingMailer) Send(context.Context, mail.Mail) error { panic("mail server exploded") }

func TestHandlerTimeoutEndsEachAttempt(t *testing.T) {
	t.Parallel()
	cfg := fastRetries
	cfg.HandlerTimeout = 50 * time.Millisecond
	b := setup(t, setupOpts{cfg: cfg, mailer: &blockingMailer{called: make(chan struct{}, 1)}})
	b.start(t)
	ev := newEvent("Ann")
	insertUser(t, b.pool, ev)
	b.publish(t, newMessage(t, uuid.New(), ev, ""))

	require.True(t, assertEventually(10*time.Second, func() bool {
		return len(deadLetters(t, b, deadletter.Filter{})) == 1
	}))
	d := deadLetters(t, b, deadletter.Filter{})[0]
	require.Equal(t, worker.HandlerEmail, d.Handler)
	require.Equal(t, 3, d.Attempts, "every attempt gets its own timeout")
	require.Contains(t, d.Error, "deadline exceeded")
}

func TestDeadLetterKeepsMetadata(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: worker.Config{MaxRetries: -1, Handlers: []string{worker.HandlerProfile}}})
	b.start(t)
	ev := newEvent("Ann")
	id := uuid.New()
	msg := newMessage(t, id, ev, "req-1")
	msg.Metadata.Set(outbox.MetadataTraceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	b.publish(t, msg)

	require.True(t, assertEventually(10*time.Second, func() bool {
		return len(deadLetters(t, b, deadletter.Filter{})) == 1
	}))
	d := deadLetters(t, b, deadletter.Filter{})[0]
	require.Equal(t, 1, d.Attempts, "MaxRetries < 0 turns retries off")
	want := map[string]string(msg.Metadata)
	require.Equal(t, want, d.Metadata)
	var got map[string]any
	require.NoError(t, json.Unmarshal(d.Payload, &got))
	require.Equal(t, ev.UserID.String(), got["user_id"])
}

func TestRejectedMailIsDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: fastRetries, smtp: mailtest.Options{Reject: func(string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}}})
	b.start(t)
	ev := newEvent("Ann")
	insertUser(t, b.pool, ev)
	b.publish(t, newMessage(t, uuid.New(), ev, ""))

	require.True(t, assertEventually(10*time.Second, func() bool {
		return len(deadLetters(t, b, deadletter.Filter{})) == 1
	}))
	d := deadLetters(t, b, deadletter.Filter{})[0]
	require.Equal(t, worker.HandlerEmail, d.Handler)
	require.Equal(t, 1, d.Attempts, "a permanent refusal is not retried")
	require.Contains(t, d.Error, "no such mailbox")
}
