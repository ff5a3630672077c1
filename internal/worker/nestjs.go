package worker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/outbox/inbox"
)

// HandlerNestJS delivers events to NestJS consumers through Config.NestJS
// (package internal/nestjs). It runs only when named.
const HandlerNestJS = "nestjs"

// Emitter delivers events to consumers outside outboxd, such as
// *nestjs.Emitter. Its connection's life is the caller's: *nestjs.Emitter
// is also a Service.
type Emitter interface {
	// Topics lists the topics to deliver; the handler subscribes to each.
	Topics() []string
	// Emit delivers msg, a message of topic, and returns once the other
	// side has it; an error is retried as any handler's.
	Emit(ctx context.Context, topic string, msg *message.Message) error
}

// route is one router handler: a handler on one topic.
type route struct {
	name  string
	topic string
	fn    message.NoPublishHandlerFunc
}

// routes are the router handlers of handler: one on user.created, or for
// nestjs one per topic it delivers, all in its consumer group.
func (w *Worker) routes(handler string, effects map[string]effect) []route {
	if handler != HandlerNestJS {
		return []route{{name: handler, topic: event.TopicUserCreated, fn: w.handle(handler, effects[handler])}}
	}
	var rs []route
	for _, topic := range w.cfg.NestJS.Topics() {
		rs = append(rs, route{name: handler + "/" + topic, topic: topic, fn: w.emitNestJS(topic)})
	}
	return rs
}

// emitNestJS delivers each message of topic unless the inbox says it was
// delivered, and records it after, as the email handler does for its
// external effect: a crash between the two delivers it again. A
// user.created payload is checked as the other handlers check it; any
// other must be JSON, NestJS's data.
func (w *Worker) emitNestJS(topic string) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		ctx := msg.Context()
		id, err := messageID(msg)
		if err != nil {
			return err
		}
		if topic == event.TopicUserCreated {
			if _, err := decodeUserCreated(msg); err != nil {
				return err
			}
		} else if !json.Valid(msg.Payload) {
			return poison("%s payload is not JSON", topic)
		}
		seen, err := inbox.Seen(ctx, w.pool, HandlerNestJS, id)
		if err != nil {
			return err
		}
		if seen {
			w.metrics.duplicates.WithLabelValues(HandlerNestJS).Inc()
			loggerFrom(ctx, w.logger).DebugContext(ctx, "duplicate message skipped")
			return nil
		}
		if err := w.cfg.NestJS.Emit(ctx, topic, msg); err != nil {
			return fmt.Errorf("deliver to NestJS: %w", err)
		}
		recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if err := inbox.Record(recordCtx, w.pool, HandlerNestJS, id); err != nil {
			loggerFrom(ctx, w.logger).ErrorContext(ctx, "event delivered to NestJS but not recorded: a redelivery delivers it again", "error", err)
		}
		return nil
	}
}
