package worker

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/deadletter"
)

// storeTimeout bounds storing a dead letter.
const storeTimeout = 10 * time.Second

// deadLetter stores a message whose last attempt failed in dead_letters, with
// the handler, the error and the number of attempts, and acks it so the
// stream moves on. A message whose context ended (shutdown, the broker's ack
// deadline) is not given up on: its error goes back to the router, which
// nacks it for redelivery. If storing fails, the message is nacked too, so
// it is never lost.
func deadLetter(handler string, pool *pgxpool.Pool, m *handlerMetrics, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context()
			attempts := new(atomic.Int64)
			msg.SetContext(context.WithValue(ctx, attemptsKey, attempts))
			out, err := h(msg)
			if err == nil || ctx.Err() != nil {
				return out, err
			}

			id, idErr := messageID(msg)
			if idErr != nil {
				// Not even an id to store it under: make one up rather than
				// keep a poison message going round.
				id = uuid.New()
			}
			storeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
			defer cancel()
			dlID, storeErr := deadletter.Add(storeCtx, pool, deadletter.DeadLetter{
				Handler:   handler,
				MessageID: id,
				Topic:     message.SubscribeTopicFromCtx(ctx),
				Payload:   msg.Payload,
				Metadata:  msg.Metadata,
				Error:     err.Error(),
				Attempts:  int(max(attempts.Load(), 1)),
			})
			log := loggerFrom(ctx, logger)
			if storeErr != nil {
				log.ErrorContext(ctx, "cannot store dead letter; the message will be redelivered", "error", err, "store_error", storeErr)
				return out, storeErr
			}
			m.deadLettered.WithLabelValues(handler).Inc()
			log.ErrorContext(ctx, "message dead-lettered", "error", err, "attempts", attempts.Load(), "dead_letter_id", dlID)
			return out, nil
		}
	}
}

// countAttempt counts the attempts at a message for deadLetter; it runs
// inside the retry, once per attempt.
func countAttempt(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if n, ok := msg.Context().Value(attemptsKey).(*atomic.Int64); ok {
			n.Add(1)
		}
		return h(msg)
	}
}

// attempt is the number of the attempt in progress, from 1; 0 outside the
// dead-letter middleware.
func attempt(ctx context.Context) int64 {
	if n, ok := ctx.Value(attemptsKey).(*atomic.Int64); ok {
		return n.Load()
	}
	return 0
}
