package relay

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the relay's spans.
const tracerName = "github.com/outboxd/outboxd/relay"

// traceContext reads and writes the W3C "traceparent" and "tracestate"
// metadata. The relay always uses it, whatever the global propagator is,
// because outbox.Enqueue callers store exactly these keys.
var traceContext = propagation.TraceContext{}

// startPublishSpan starts the producer span of msg, a child of the trace
// context the writer stored in the row's metadata, and puts the span's own
// context into msg's metadata and context, so that consumers' spans become
// its children. Without a recording provider, the span is a no-op that
// carries the writer's context through unchanged.
func (r *Relay) startPublishSpan(ctx context.Context, msg *message.Message, topic string) trace.Span {
	carrier := propagation.MapCarrier(msg.Metadata)
	ctx, span := r.tracer.Start(traceContext.Extract(ctx, carrier), "publish "+topic,
		trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() { // attributes cost allocations no one reads otherwise
		span.SetAttributes(
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", topic),
			attribute.String("messaging.message.id", msg.UUID),
		)
	}
	if span.SpanContext().IsValid() {
		traceContext.Inject(ctx, carrier)
	}
	msg.SetContext(ctx)
	return span
}
