package mail_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/mail/mailtest"
)

const from = "outboxd <noreply@outboxd.test>"

func newMailer(t *testing.T, cfg mail.SMTPConfig) *mail.SMTPMailer {
	t.Helper()
	cfg.From = from
	cfg.Timeout = 5 * time.Second
	cfg.Logger = slog.New(slog.DiscardHandler)
	m, err := mail.NewSMTP(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestSMTPMailerDeliversWelcomeMail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	server := mailtest.NewServer(t, mailtest.Options{})
	mailer := newMailer(t, mail.SMTPConfig{Addr: server.Addr()})

	id := uuid.New()
	m, err := mail.Welcome(event.UserCreated{
		UserID: uuid.New(), Email: "ann@example.com", Name: `<b>Ann & "Bo"</b>`, CreatedAt: time.Now(),
	}, id)
	require.NoError(t, err)
	m.Headers = map[string]string{"X-Correlation-ID": "req-1\r\nBcc: evil@example.com"}
	require.NoError(t, mailer.Send(ctx, m))

	got := server.WaitForCount(1, 10*time.Second)
	require.Len(t, got, 1)
	r := got[0]
	require.Equal(t, []string{"ann@example.com"}, r.To)
	require.Equal(t, "noreply@outboxd.test", r.From)
	require.Equal(t, `Welcome to outboxd, <b>Ann & "Bo"</b>`, r.Subject)
	require.Equal(t, "<"+id.String()+"@outboxd>", r.MessageID)
	require.Contains(t, r.HTML, `&lt;b&gt;Ann &amp; &#34;Bo&#34;&lt;/b&gt;`)
	require.NotContains(t, r.HTML, "<b>Ann")
	require.Contains(t, r.Text, `Hi <b>Ann & "Bo"</b>,`)
	require.Equal(t, "req-1 Bcc: evil@example.com", r.Header.Get("X-Correlation-Id"))
	require.Empty(t, r.Header.Get("Bcc"), "header values cannot add header fields")
	require.False(t, r.TLS, "the server offers no STARTTLS, so opportunistic mode sends in clear")
}

func TestSMTPMailerTLSModes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	msg := mail.Mail{To: "bo@example.com", Subject: "hi", Text: "hello", MessageID: mail.MessageID(uuid.New())}

	t.Run("OpportunisticUpgradesWhenOffered", func(t *testing.T) {
		t.Parallel()
		server := mailtest.NewServer(t, mailtest.Options{StartTLS: true})
		mailer := newMailer(t, mail.SMTPConfig{Addr: server.Addr(), TLSConfig: server.ClientTLSConfig()})
		require.NoError(t, mailer.Send(ctx, msg))
		require.True(t, server.WaitForCount(1, 10*time.Second)[0].TLS)
	})

	t.Run("StartTLSRequiredFailsWhenNotOffered", func(t *testing.T) {
		t.Parallel()
		server := mailtest.NewServer(t, mailtest.Options{})
		mailer := newMailer(t, mail.SMTPConfig{Addr: server.Addr(), TLS: mail.TLSStartTLS})
		err := mailer.Send(ctx, msg)
		require.ErrorContains(t, err, "STARTTLS")
		require.Empty(t, server.Received())
	})

	t.Run("NoneNeverEncrypts", func(t *testing.T) {
		t.Parallel()
		server := mailtest.NewServer(t, mailtest.Options{StartTLS: true})
		mailer := newMailer(t, mail.SMTPConfig{Addr: server.Addr(), TLS: mail.TLSNone})
		require.NoError(t, mailer.Send(ctx, msg))
		require.False(t, server.WaitForCount(1, 10*time.Second)[0].TLS)
	})

	t.Run("StartTLSWithAuth", func(t *testing.T) {
		t.Parallel()
		const password = "s3cret-Pa55word"
		server := mailtest.NewServer(t, mailtest.Options{StartTLS: true, Username: "outboxd", Password: password})
		mailer := newMailer(t, mail.SMTPConfig{
			Addr: server.Addr(), TLS: mail.TLSStartTLS, TLSConfig: server.ClientTLSConfig(),
			Username: "outboxd", Password: password,
		})
		require.NoError(t, mailer.Send(ctx, msg))
		require.True(t, server.WaitForCount(1, 10*time.Second)[0].TLS)

		wrong := newMailer(t, mail.SMTPConfig{
			Addr: server.Addr(), TLS: mail.TLSStartTLS, TLSConfig: server.ClientTLSConfig(),
			Username: "outboxd", Password: "wrong-" + password,
		})
		err := wrong.Send(ctx, msg)
		require.Error(t, err)
		require.NotContains(t, err.Error(), password)
	})
}

func TestSMTPMailerErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("PermanentRefusalIsRejected", func(t *testing.T) {
		t.Parallel()
		server := mailtest.NewServer(t, mailtest.Options{Reject: func(to string) error {
			if strings.HasPrefix(to, "gone@") {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
		}})
		mailer := newMailer(t, mail.SMTPConfig{Addr: server.Addr()})

		err := mailer.Send(ctx, mail.Mail{To: "gone@example.com", Subject: "s", Text: "t"})
		require.ErrorIs(t, err, mail.ErrRejected)
		err = mailer.Send(ctx, mail.Mail{To: "busy@example.com", Subject: "s", Text: "t"})
		require.Error(t, err)
		require.NotErrorIs(t, err, mail.ErrRejected, "a 4xx answer is worth retrying")
	})

	t.Run("ServerDownThenBack", func(t *testing.T) {
		t.Parallel()
		server := mailtest.NewServer(t, mailtest.Options{})
		mailer := newMailer(t, mail.SMTPConfig{Addr: server.Addr()})
		msg := mail.Mail{To: "a@example.com", Subject: "s", Text: "t", MessageID: mail.MessageID(uuid.New())}

		server.Stop()
		err := mailer.Send(ctx, msg)
		require.Error(t, err)
		require.NotErrorIs(t, err, mail.ErrRejected)
		require.Contains(t, err.Error(), msg.MessageID, "the error says which mail failed")

		server.Start()
		require.NoError(t, mailer.Send(ctx, msg))
		require.Len(t, server.WaitForCount(1, 10*time.Second), 1)
	})

	t.Run("InvalidRecipientIsRejected", func(t *testing.T) {
		t.Parallel()
		server := mailtest.NewServer(t, mailtest.Options{})
		mailer := newMailer(t, mail.SMTPConfig{Addr: server.Addr()})
		err := mailer.Send(ctx, mail.Mail{To: "not an address", Subject: "s", Text: "t"})
		require.ErrorIs(t, err, mail.ErrRejected)
		require.NotContains(t, err.Error(), "not an address", "the recipient's address stays out of errors")
	})
}

func TestSMTPConfig(t *testing.T) {
	t.Parallel()

	t.Run("ValidateNamesEveryField", func(t *testing.T) {
		t.Parallel()
		err := mail.SMTPConfig{TLS: "sometimes", Password: "pw"}.WithDefaults().Validate()
		require.Error(t, err)
		for _, field := range []string{"SMTP_ADDR", "MAIL_FROM", "sometimes", "SMTP_USERNAME"} {
			require.ErrorContains(t, err, field)
		}
		require.NotContains(t, err.Error(), "pw")

		_, err = mail.NewSMTP(mail.SMTPConfig{Addr: "localhost", From: "a@example.com"})
		require.ErrorContains(t, err, "host:port")
		_, err = mail.NewSMTP(mail.SMTPConfig{Addr: "localhost:25", From: "not an address"})
		require.ErrorContains(t, err, "MAIL_FROM")
	})

	t.Run("DefaultsToOpportunisticTLS", func(t *testing.T) {
		t.Parallel()
		cfg := mail.SMTPConfig{}.WithDefaults()
		require.Equal(t, mail.TLSOpportunistic, cfg.TLS)
		require.Equal(t, mail.TimeoutDefault, cfg.Timeout)
		require.NotNil(t, cfg.Logger)
	})

	t.Run("ParseTLSMode", func(t *testing.T) {
		t.Parallel()
		for in, want := range map[string]mail.TLSMode{
			"": mail.TLSOpportunistic, "opportunistic": mail.TLSOpportunistic, "STARTTLS": mail.TLSStartTLS,
			"tls": mail.TLSImplicit, " none ": mail.TLSNone,
		} {
			got, err := mail.ParseTLSMode(in)
			require.NoError(t, err, in)
			require.Equal(t, want, got, in)
		}
		_, err := mail.ParseTLSMode("ssl")
		require.ErrorContains(t, err, "ssl")
	})

	t.Run("PasswordNeverShown", func(t *testing.T) {
		t.Parallel()
		const password = "hunter2-very-secret"
		cfg := mail.SMTPConfig{Addr: "smtp.example.com:587", From: "a@example.com", Username: "u", Password: password}
		var logs bytes.Buffer
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "smtp", cfg)
		require.NotContains(t, logs.String(), password)
		require.Contains(t, logs.String(), "smtp.example.com:587")
		require.NotContains(t, fmt.Sprint(cfg), password)
		require.NotContains(t, fmt.Sprintf("%+v", cfg), password)
	})
}

func TestLogMailer(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	m := mail.LogMailer{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	require.NoError(t, m.Send(context.Background(), mail.Mail{
		To: "ann@example.com", Subject: "Welcome", Text: "hello Ann", MessageID: "<x@outboxd>",
	}))
	for _, want := range []string{"ann@example.com", "Welcome", "hello Ann", "<x@outboxd>"} {
		require.Contains(t, logs.String(), want)
	}
}
