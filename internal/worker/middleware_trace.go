package worker

import (
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
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			topic := message.SubscribeTopicFromCtx(msg.Context())
			ctx := tracing.Extract(msg.Context(), msg.Metadata)
			ctx, span := tracer.Start(ctx, "process "+topic+" "+handler,
				trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(
					attribute.String("messaging.operation.type", "process"),
					attribute.String("messaging.destination.name", topic),
					attribute.String("messaging.consumer.group.name", Group(handler)),
					attribute.String("messaging.message.id", msg.UUID),
				))
			defer span.End()
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
