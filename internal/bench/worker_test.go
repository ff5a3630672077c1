package bench

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/worker"
)

func TestParseVmRSSReadsKilobytes(t *testing.T) {
	t.Parallel()
	status := "Name:\toutboxd\nVmPeak:\t  900000 kB\nVmRSS:\t   43210 kB\nThreads:\t9\n"
	kb, err := parseVmRSS(bufio.NewScanner(strings.NewReader(status)))
	require.NoError(t, err)
	require.Equal(t, int64(43210), kb)

	_, err = parseVmRSS(bufio.NewScanner(strings.NewReader("Name:\tzombie\nState:\tZ (zombie)\n")))
	require.ErrorIs(t, err, errNoVmRSS)
	_, err = parseVmRSS(bufio.NewScanner(strings.NewReader("VmRSS:\t12 MB\n")))
	require.ErrorContains(t, err, "want a number of kB")
}

func TestPeakAndMedian(t *testing.T) {
	t.Parallel()
	peak, median := peakAndMedian([]float64{40, 42, 90, 41, 43})
	require.Equal(t, 90.0, peak)
	require.Equal(t, 42.0, median)
	peak, median = peakAndMedian(nil)
	require.Zero(t, peak)
	require.Zero(t, median)
}

func TestWorkerEnvIsTheBenchsAlone(t *testing.T) {
	t.Parallel()
	base := []string{"PATH=/usr/bin", "HOME=/root", "WORKER_CONCURRENCY=99", "BROKER=kafka", "BROKER_URL=x:1",
		"SMTP_ADDR=mail:25", "NESTJS_BROKER=nats", "LOG_LEVEL=debug", "DATABASE_URL=postgres://prod/outbox", "OTEL_EXPORTER_OTLP_ENDPOINT=x"}
	o := oneAtATime(worker.HandlerProfile, worker.HandlerAudit)
	env := o.env(base, "postgres://bench/db", "nats://127.0.0.1:4222")
	require.Subset(t, env, []string{"PATH=/usr/bin", "HOME=/root",
		"DATABASE_URL=postgres://bench/db", "BROKER=nats", "BROKER_URL=nats://127.0.0.1:4222",
		"WORKER_HANDLERS=profile,audit", "WORKER_CONCURRENCY=1", "WORKER_BATCH_SIZE=1", "LOG_LEVEL=warn", "ADMIN_ADDR=127.0.0.1:0"})
	for _, inherited := range []string{"WORKER_CONCURRENCY=99", "BROKER=kafka", "SMTP_ADDR=mail:25", "NESTJS_BROKER=nats", "LOG_LEVEL=debug", "OTEL_EXPORTER_OTLP_ENDPOINT=x"} {
		require.NotContains(t, env, inherited)
	}
	require.False(t, slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "SMTP_") }), "no email handler, no SMTP settings")

	o = newWorkerOpts(worker.HandlerEmail)
	o.smtpAddr = "127.0.0.1:2525"
	env = o.env(base, "postgres://bench/db", "nats://127.0.0.1:4222")
	require.Subset(t, env, []string{"SMTP_ADDR=127.0.0.1:2525", "SMTP_TLS=none", "MAIL_FROM=" + workerMailFrom, "WORKER_CONCURRENCY=16", "WORKER_BATCH_SIZE=100"})
}

func TestTailWriterKeepsTheEnd(t *testing.T) {
	t.Parallel()
	w := &tailWriter{max: 8}
	require.Equal(t, "no output", w.String())
	_, _ = io.WriteString(w, "level=ERROR\n")
	_, _ = io.WriteString(w, "boom\n")
	require.Equal(t, "OR boom", w.String(), "the last 8 bytes, on one line")
}

// TestSMTPSinkCountsMails sends mails through the SMTP mailer to the sink,
// which counts each and notes when the expected number arrived.
func TestSMTPSinkCountsMails(t *testing.T) {
	t.Parallel()
	sink, err := startSMTPSink(time.Millisecond)
	require.NoError(t, err)
	defer sink.close()
	m, err := mail.NewSMTP(mail.SMTPConfig{Addr: sink.addr(), From: workerMailFrom, TLS: mail.TLSNone, Concurrency: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	defer func() { _ = m.Close() }()

	sink.expect(3)
	for i := range 3 {
		u := newWorkerUser(0, i)
		w, err := mail.Welcome(u.ev, u.messageID)
		require.NoError(t, err)
		require.NoError(t, m.Send(context.Background(), w))
		got, at := sink.received()
		require.Equal(t, int64(i+1), got)
		require.Equal(t, i == 2, !at.IsZero(), "reached after the third mail only")
	}
	sink.expect(1)
	got, at := sink.received()
	require.Zero(t, got)
	require.True(t, at.IsZero())
}
