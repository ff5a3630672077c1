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
			info := &messageInfo{
				correlationID: msg.Metadata.Get(outbox.MetadataCorrelationID),
				handler:       handler,
				messageID:     msg.UUID,
				base:          logger,
			}
			msg.SetContext(context.WithValue(msg.Context(), messageKey, info))
			return h(msg)
		}
	}
}
