package mail

import (
	"cmp"
	"context"
	"log/slog"
)

// LogMailer writes each mail to a logger instead of sending it, for
// `outboxd dev` and for demos without a mail server.
type LogMailer struct {
	// Logger receives one line per mail. Defaults to slog.Default().
	Logger *slog.Logger
}

// Send logs m at info level, plain-text part included, and never fails.
func (l LogMailer) Send(ctx context.Context, m Mail) error {
	cmp.Or(l.Logger, slog.Default()).InfoContext(ctx, "mail (not sent: log mailer)",
		"to", m.To,
		"subject", oneLine(m.Subject),
		"message_id", m.MessageID,
		"text", m.Text,
	)
	return nil
}
