package worker

import (
	"context"
	"log/slog"
	"sync"
)

type ctxKey int

const (
	messageKey ctxKey = iota
	attemptsKey
)

// messageInfo is what correlate puts in a message's context: the
// correlation id, and what the message's logger names. The logger is built
// on first use, since most messages log nothing and slog's With formats
// its attributes at once.
type messageInfo struct {
	correlationID string
	handler       string
	messageID     string
	base          *slog.Logger

	once   sync.Once
	logger *slog.Logger
}

func (m *messageInfo) log() *slog.Logger {
	m.once.Do(func() {
		l := m.base.With("handler", m.handler, "message_id", m.messageID)
		if m.correlationID != "" {
			l = l.With("correlation_id", m.correlationID)
		}
		m.logger = l
	})
	return m.logger
}

// correlationID is the correlation id of the message being handled, or "".
func correlationID(ctx context.Context) string {
	if m, ok := ctx.Value(messageKey).(*messageInfo); ok {
		return m.correlationID
	}
	return ""
}

// loggerFrom is the logger of the message being handled, carrying its
// handler, message id and correlation id, or fallback outside a message.
func loggerFrom(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if m, ok := ctx.Value(messageKey).(*messageInfo); ok {
		return m.log()
	}
	return fallback
}
