package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/mail/mailtest"
	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/internal/signup"
	"github.com/outboxd/outboxd/internal/worker"
	"github.com/outboxd/outboxd/relay"
)

// TestSignupLeadsToOneEmailProfileAndAuditRow drives the whole pipeline: a
// signup over HTTP, the relay publishing to NATS JetStream, the worker
// consuming it and sending the welcome email to a real SMTP server. One
// email (recipient, subject, escaped name), one profile and one audit row
// follow, and every span, from the HTTP request to each handler, shares the
// request's trace id.
func TestSignupLeadsToOneEmailProfileAndAuditRow(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.Connect(t, dsn)
	bcfg := brokerUnderTest(t, broker.KindNATS, dsn)
	smtp := mailtest.NewServer(t, mailtest.Options{})
	mailer, err := mail.NewSMTP(mail.SMTPConfig{Addr: smtp.Addr(), From: "welcome@outboxd.test", TLS: mail.TLSNone})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mailer.Close() })

	pub, err := broker.NewPublisher(ctx, bcfg)
	require.NoError(t, err)
	defer pub.Close()
	r, err := relay.New(pool, pub, relay.Config{})
	require.NoError(t, err)
	w, err := worker.New(pool, func(ctx context.Context, group string) (message.Subscriber, error) {
		return broker.NewSubscriber(ctx, bcfg, group)
	}, mailer, worker.Config{})
	require.NoError(t, err)
	stop := runInBackground(ctx, r.Run, w.Run)
	defer func() {
		cancel()
		require.NoError(t, stop())
	}()

	srv, err := api.New(pool, api.Config{Argon2: signup.MinimalParams, SignupRateLimit: new(0)})
	require.NoError(t, err)
	httpSrv := httptest.NewServer(srv.Handler())
	defer httpSrv.Close()

	traceID := trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	req, err := http.NewRequest(http.MethodPost, httpSrv.URL+"/v1/signup",
		strings.NewReader(`{"email":"ann@example.com","name":"<b>Ann & \"Bo\"</b>","password":"correct horse"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+traceID.String()+"-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var user struct{ ID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&user))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	mails := smtp.WaitForCount(1, 20*time.Second)
	require.Len(t, mails, 1)
	require.Equal(t, []string{"ann@example.com"}, mails[0].To)
	require.Contains(t, mails[0].Subject, "Welcome")
	require.Contains(t, mails[0].HTML, "&lt;b&gt;Ann &amp; &#34;Bo&#34;&lt;/b&gt;", "the name is escaped in HTML")
	require.NotContains(t, mails[0].HTML, "<b>Ann")
	require.Contains(t, mails[0].Text, `<b>Ann & "Bo"</b>`, "the plain part shows the name as typed")

	require.Eventually(t, func() bool {
		var profiles, audits int
		require.NoError(t, pool.QueryRow(ctx,
			`SELECT (SELECT count(*) FROM profiles WHERE user_id = $1), (SELECT count(*) FROM audit_log WHERE subject = $1::text)`,
			user.ID).Scan(&profiles, &audits))
		return profiles == 1 && audits == 1
	}, 20*time.Second, 20*time.Millisecond, "one profile and one audit row")

	// Spans end after their handler returns: wait for all three.
	var names []string
	require.Eventually(t, func() bool {
		names = names[:0]
		for _, s := range spans.Ended() {
			if s.SpanContext().TraceID() == traceID {
				names = append(names, s.Name())
			}
		}
		return slices.Contains(names, "process user.created email") &&
			slices.Contains(names, "process user.created profile") &&
			slices.Contains(names, "process user.created audit")
	}, 10*time.Second, 20*time.Millisecond, "handler spans in the request's trace")
	require.Contains(t, names, "POST /v1/signup", "the API's server span is in the trace: %v", names)
	require.Contains(t, names, "publish user.created", "the relay's publish span is in the trace: %v", names)
	// The chain is signup → publish → handlers: each handler span's parent
	// is the relay's publish span, not the request's.
	var publish sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.SpanContext().TraceID() == traceID && s.Name() == "publish user.created" {
			publish = s
		}
	}
	for _, s := range spans.Ended() {
		if s.SpanContext().TraceID() == traceID && strings.HasPrefix(s.Name(), "process ") {
			require.Equal(t, publish.SpanContext().SpanID(), s.Parent().SpanID(), "parent of %s", s.Name())
		}
	}

	// Nothing more arrives: exactly one email.
	require.Len(t, smtp.Received(), 1)
}
