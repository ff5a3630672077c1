package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/worker"
)

func TestUserCreatedLeadsToOneEmailProfileAndAuditRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{})
	b.start(t)

	ev := newEvent(`<b>Ann & "Bo"</b>`)
	insertUser(t, b.pool, ev)
	id := uuid.New()
	b.publish(t, newMessage(t, id, ev, "req-42"))
	waitProcessed(t, b.pool, id, 3, 10*time.Second)

	mails := b.smtp.WaitForCount(1, 10*time.Second)
	require.Len(t, mails, 1, "exactly one email")
	m := mails[0]
	require.Equal(t, []string{ev.Email}, m.To)
	require.Equal(t, `Welcome to outboxd, <b>Ann & "Bo"</b>`, m.Subject)
	require.Equal(t, mail.MessageID(id), m.MessageID)
	require.Contains(t, m.HTML, `&lt;b&gt;Ann &amp; &#34;Bo&#34;&lt;/b&gt;`, "the name is escaped in the HTML part")
	require.NotContains(t, m.HTML, "<b>Ann")
	require.Contains(t, m.Text, ev.Name)
	require.Equal(t, "req-42", m.Header.Get("X-Correlation-Id"))

	var (
		displayName, bio, avatar, locale string
	)
	require.NoError(t, b.pool.QueryRow(ctx,
		`SELECT display_name, bio, avatar_url, locale FROM profiles WHERE user_id = $1`, ev.UserID,
	).Scan(&displayName, &bio, &avatar, &locale))
	require.Equal(t, ev.Name, displayName)
	require.Equal(t, []string{"", "", "en"}, []string{bio, avatar, locale})
	require.Equal(t, 1, count(t, b.pool, `SELECT count(*) FROM profiles`))

	var (
		evName, actor, subject, correlation string
		occurredAt                          time.Time
		messageID                           uuid.UUID
		payload                             map[string]any
	)
	require.NoError(t, b.pool.QueryRow(ctx,
		`SELECT event, actor, subject, occurred_at, correlation_id, message_id, payload FROM audit_log`,
	).Scan(&evName, &actor, &subject, &occurredAt, &correlation, &messageID, &payload))
	require.Equal(t, "user.created", evName)
	require.Equal(t, worker.AuditActorSignup, actor)
	require.Equal(t, ev.UserID.String(), subject)
	require.True(t, ev.CreatedAt.Equal(occurredAt), "occurred_at is the user's creation, got %s want %s", occurredAt, ev.CreatedAt)
	require.Equal(t, "req-42", correlation)
	require.Equal(t, id, messageID)
	require.Equal(t, ev.Email, payload["email"])
	require.Equal(t, 1, count(t, b.pool, `SELECT count(*) FROM audit_log`))

	for _, h := range worker.AllHandlers {
		require.Equal(t, 1.0, metric(t, b.reg, "outboxd_worker_messages_handled_total", h), h)
		require.Equal(t, 1.0, metric(t, b.reg, "outboxd_worker_handler_duration_seconds", h), h)
		require.Zero(t, metric(t, b.reg, "outboxd_worker_messages_failed_total", h), h)
	}
	require.Len(t, b.smtp.Received(), 1, "still one email after every handler finished")
}

func TestRedeliveredMessageHasOneEffect(t *testing.T) {
	t.Parallel()

	t.Run("AfterProcessing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.start(t)
		ev := newEvent("Ann")
		insertUser(t, b.pool, ev)
		id := uuid.New()

		b.publish(t, newMessage(t, id, ev, ""))
		waitProcessed(t, b.pool, id, 3, 10*time.Second)
		b.publish(t, newMessage(t, id, ev, ""), newMessage(t, id, ev, ""))
		for _, h := range worker.AllHandlers {
			require.True(t, assertEventually(10*time.Second, func() bool {
				return metric(t, b.reg, "outboxd_worker_messages_duplicate_total", h) == 2
			}), "handler %s saw both redeliveries as duplicates", h)
		}

		require.Equal(t, 1, count(t, b.pool, `SELECT count(*) FROM profiles`))
		require.Equal(t, 1, count(t, b.pool, `SELECT count(*) FROM audit_log`))
		mails := b.smtp.Received()
		require.Len(t, mails, 1, "a redelivery of a recorded mail sends nothing")
		require.Equal(t, mail.MessageID(id), mails[0].MessageID)
	})

	t.Run("ThreeAtOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.start(t)
		ev := newEvent("Bo")
		insertUser(t, b.pool, ev)
		id := uuid.New()

		// Three deliveries in flight together race in every handler.
		b.publish(t, newMessage(t, id, ev, ""), newMessage(t, id, ev, ""), newMessage(t, id, ev, ""))
		for _, h := range worker.AllHandlers {
			require.True(t, assertEventually(10*time.Second, func() bool {
				return metric(t, b.reg, "outboxd_worker_messages_handled_total", h) == 3
			}), "handler %s acked all three deliveries", h)
		}

		require.Equal(t, 1, count(t, b.pool, `SELECT count(*) FROM profiles`))
		require.Equal(t, 1, count(t, b.pool, `SELECT count(*) FROM audit_log`))
		mails := b.smtp.WaitForCount(1, 10*time.Second)
		require.LessOrEqual(t, len(mails), 3)
		for _, m := range mails {
			require.Equal(t, mail.MessageID(id), m.MessageID, "a repeated mail keeps the message's Message-ID")
		}
	})
}

// TestMailServerOutage runs with the default retry policy: it must outlast
// a mail server that is away for 10 seconds (see "Sizing retries").
func TestMailServerOutage(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.start(t)
	ev := newEvent("Ann")
	insertUser(t, b.pool, ev)
	id := uuid.New()

	b.smtp.Stop()
	down := time.Now()
	b.publish(t, newMessage(t, id, ev, ""))

	// profile and audit do not wait for email.
	waitCount(t, b.pool, 1, 5*time.Second, `SELECT count(*) FROM profiles`)
	waitCount(t, b.pool, 1, 5*time.Second, `SELECT count(*) FROM audit_log`)
	require.True(t, assertEventually(10*time.Second, func() bool {
		return metric(t, b.reg, "outboxd_worker_messages_failed_total", worker.HandlerEmail) >= 2
	}), "email keeps trying while the server is down")

	// Keep the server away for 10 seconds, checking that nothing gives up.
	for time.Since(down) < 10*time.Second {
		require.Zero(t, count(t, b.pool, `SELECT count(*) FROM dead_letters`))
		time.Sleep(100 * time.Millisecond)
	}
	require.Empty(t, b.smtp.Received())
	b.smtp.Start()

	mails := b.smtp.WaitForCount(1, 20*time.Second)
	require.Equal(t, mail.MessageID(id), mails[0].MessageID)
	waitProcessed(t, b.pool, id, 3, 5*time.Second)
	require.Zero(t, count(t, b.pool, `SELECT count(*) FROM dead_letters`), "nothing dead-lettered that could succeed")
	require.Zero(t, metric(t, b.reg, "outboxd_worker_messages_dead_lettered_total", worker.HandlerEmail))
	require.Positive(t, metric(t, b.reg, "outboxd_worker_messages_retried_total", worker.HandlerEmail))
	require.Zero(t, metric(t, b.reg, "outboxd_worker_messages_retried_total", worker.HandlerProfile))
}

func TestHandlersCanBeSelected(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: worker.Config{Handlers: []string{worker.HandlerProfile}}})
	b.start(t)
	ev := newEvent("Ann")
	insertUser(t, b.pool, ev)
	id := uuid.New()
	b.publish(t, newMessage(t, id, ev, ""))
	waitProcessed(t, b.pool, id, 1, 10*time.Second)

	require.Equal(t, 1, count(t, b.pool, `SELECT count(*) FROM profiles`))
	require.Zero(t, count(t, b.pool, `SELECT count(*) FROM audit_log`))
	require.Empty(t, b.smtp.Received())
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	pool := setup(t, setupOpts{}).pool
	sub := func(context.Context, string) (message.Subscriber, error) { return nil, nil }

	_, err := worker.New(pool, sub, nil, worker.Config{Handlers: []string{"profile", "sms", "profile"}, RetryInitialInterval: time.Minute})
	require.ErrorContains(t, err, `Config.Handlers: unknown handler "sms"`)
	require.ErrorContains(t, err, `"profile" named twice`)
	require.ErrorContains(t, err, "Config.RetryMaxInterval")

	_, err = worker.New(pool, sub, nil, worker.Config{})
	require.ErrorContains(t, err, "mailer", "email runs by default and needs a mailer")
	_, err = worker.New(pool, sub, nil, worker.Config{Handlers: []string{worker.HandlerAudit}})
	require.NoError(t, err, "no mailer needed without email")
}

func TestReadyAndGracefulStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	blocked := &blockingMailer{called: make(chan struct{}, 1)}
	b := setup(t, setupOpts{mailer: blocked, cfg: worker.Config{HandlerTimeout: time.Minute}})
	require.ErrorContains(t, b.worker.Ready(ctx), "not running")

	stop := b.start(t)
	require.NoError(t, b.worker.Ready(ctx))

	ev := newEvent("Ann")
	insertUser(t, b.pool, ev)
	id := uuid.New()
	b.publish(t, newMessage(t, id, ev, ""))
	select {
	case <-blocked.called:
	case <-time.After(10 * time.Second):
		t.Fatal("the email handler never ran")
	}

	// Stopping ends the attempt in flight; its message is left for
	// redelivery, not dead-lettered.
	start := time.Now()
	require.NoError(t, stop())
	require.Less(t, time.Since(start), 10*time.Second)
	require.Error(t, b.worker.Ready(ctx))
	require.Zero(t, count(t, b.pool, `SELECT count(*) FROM dead_letters`))
	require.Zero(t, count(t, b.pool, `SELECT count(*) FROM inbox WHERE handler = 'email'`))
	require.ErrorIs(t, b.worker.Run(ctx), worker.ErrAlreadyRan)
}

// blockingMailer never sends: it waits for the end of the context.
type blockingMailer struct {
	once   sync.Once
	called chan struct{}
}

func (m *blockingMailer) Send(ctx context.Context, _ mail.Mail) error {
	m.once.Do(func() { m.called <- struct{}{} })
	<-ctx.Done()
	return ctx.Err()
}

func TestMetricsAreRegistered(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.start(t)
	ev := newEvent("Ann")
	insertUser(t, b.pool, ev)
	id := uuid.New()
	b.publish(t, newMessage(t, id, ev, ""))
	waitProcessed(t, b.pool, id, 3, 10*time.Second)

	families, err := b.reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, n := range []string{
		"outboxd_worker_messages_handled_total",
		"outboxd_worker_handler_duration_seconds",
	} {
		require.True(t, names[n], n)
	}

	// A second worker on the same registry shares the metrics.
	_, err = worker.New(b.pool, b.subscribe, mail.LogMailer{}, worker.Config{Registerer: b.reg})
	require.NoError(t, err)
}
