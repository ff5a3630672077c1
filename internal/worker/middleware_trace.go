package worker

import (
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/outboxd/outboxd/internal/tracing"
)

// traceSpan continues the trace the message carries (traceparent, written
// by the signup and kept by the relay) with one consumer span per handler
// and message, covering every attempt, so one trace shows a signup and all
// its effects.
func traceSpan(handler string) message.HandlerMiddleware {
	tracer := tracing.Tracer("worker")
	kind := trace.WithSpanKind(trace.SpanKindConsumer)
	return func(h message.HandlerFunc) message.HandlerFunc {
		// A handler consumes one topic: its span's name and attributes
		// are made once, not for every message.
		var (
			once  sync.Once
			name  string
			attrs trace.SpanStartEventOption
		)
		return func(msg *message.Message) ([]*message.Message, error) {
			once.Do(func() {
				topic := message.SubscribeTopicFromCtx(msg.Context())
				name = "process " + topic + " " + handler
				attrs = trace.WithAttributes(
					attribute.String("messaging.operation.type", "process"),
					attribute.String("messaging.destination.name", topic),
					attribute.String("messaging.consumer.group.name", Group(handler)),
				)
			})
			ctx := tracing.Extract(msg.Context(), msg.Metadata)
			ctx, span := tracer.Start(ctx, name, kind, attrs)
			defer span.End()
			if span.IsRecording() {
				span.SetAttributes(attribute.String("messaging.message.id", msg.UUID))
			}
			msg.SetContext(ctx)
			out, err := h(msg)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return out, err
		}
	}
}
