package mail_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/mail/mailtest"
)

func testMail(i int) mail.Mail {
	return mail.Mail{To: fmt.Sprintf("u%d@example.com", i), Subject: "s", Text: "t", MessageID: mail.MessageID(uuid.New())}
}

func TestSMTPMailerReusesConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	server := mailtest.NewServer(t, mailtest.Options{})
	mailer := newMailer(t, mail.SMTPConfig{Addr: server.Addr()})
	t.Cleanup(func() { _ = mailer.Close() })

	for i := range 10 {
		require.NoError(t, mailer.Send(ctx, testMail(i)))
	}
	received := server.WaitForCount(10, 10*time.Second)
	require.Len(t, received, 10)
	require.Equal(t, 1, server.Sessions(), "one connection carries mails sent one after another")
	for _, r := range received {
		require.NotEmpty(t, r.MessageID, "each mail keeps its own Message-ID")
	}
}

func TestSMTPMailerSendsOnAtMostConcurrencyConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	server := mailtest.NewServer(t, mailtest.Options{Delay: 100 * time.Millisecond})
	mailer := newMailer(t, mail.SMTPConfig{Addr: server.Addr(), Concurrency: 3})
	t.Cleanup(func() { _ = mailer.Close() })

	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 {
		wg.Go(func() { errs <- mailer.Send(ctx, testMail(i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, server.WaitForCount(12, 10*time.Second), 12)
	require.Equal(t, 3, server.PeakConcurrency(), "sends run in parallel, but never beyond Concurrency")
	require.LessOrEqual(t, server.Sessions(), 3)
}

func TestSMTPMailerReconnectsAfterTheServerDroppedIdleConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	server := mailtest.NewServer(t, mailtest.Options{})
	mailer := newMailer(t, mail.SMTPConfig{Addr: server.Addr()})
	t.Cleanup(func() { _ = mailer.Close() })

	require.NoError(t, mailer.Send(ctx, testMail(1)))
	server.Stop() // closes every connection, the idle one included
	server.Start()
	require.NoError(t, mailer.Send(ctx, testMail(2)), "a dropped idle connection is replaced, not an error")
	require.Len(t, server.WaitForCount(2, 10*time.Second), 2)
	require.Equal(t, 2, server.Sessions())
}
