package tracing

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Propagator is the W3C trace-context propagator outboxd uses everywhere,
// whatever the global one is, so that trace context flows even when no
// exporter is configured.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Inject writes ctx's trace context into metadata (key "traceparent", and
// "tracestate" when there is one). It writes nothing when ctx carries no
// valid span context.
func Inject(ctx context.Context, metadata map[string]string) {
	Propagator.Inject(ctx, propagation.MapCarrier(metadata))
}

// Traceparent returns ctx's W3C traceparent, or "" when it has none.
func Traceparent(ctx context.Context) string {
	md := map[string]string{}
	Inject(ctx, md)
	return md["traceparent"]
}

// Extract returns ctx carrying the remote trace context found in metadata,
// the parent of the spans started from it.
func Extract(ctx context.Context, metadata map[string]string) context.Context {
	return Propagator.Extract(ctx, propagation.MapCarrier(metadata))
}

// Tracer is the tracer of one outboxd component, from the global provider.
func Tracer(component string) trace.Tracer {
	return otel.Tracer("github.com/outboxd/outboxd/" + component)
}
