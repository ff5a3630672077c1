package worker

import (
	"context"
	"log/slog"
)

type ctxKey int

const (
	correlationKey ctxKey = iota
	loggerKey
	attemptsKey
)

// correlationID is the correlation id of the message being handled, or "".
func correlationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey).(string)
	return id
}

// loggerFrom is the logger of the message being handled, carrying its
// handler, message id and correlation id, or fallback outside a handler.
func loggerFrom(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return fallback
}
