package worker

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/outboxd/outboxd/outbox"
)

// correlate puts the message's correlation id into its context, with a
// logger that names the handler, the message and the
// correlation id, so every line about the message can be tied to the
// request that caused it.
func correlate(handler string, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			id := msg.Metadata.Get(outbox.MetadataCorrelationID)
			ctx := msg.Context()
			l := logger.With("handler", handler, "message_id", msg.UUID)
			if id != "" {
				l = l.With("correlation_id", id)
			}
			ctx = context.WithValue(ctx, correlationKey, id)
			ctx = context.WithValue(ctx, loggerKey, l)
			msg.SetContext(ctx)
			return h(msg)
		}
	}
}
