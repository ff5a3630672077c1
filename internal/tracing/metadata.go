package tracing

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// Inject writes ctx's trace context into metadata (key "traceparent", and
// "tracestate" when there is one), as the W3C propagator spells it.
func Inject(ctx context.Context, metadata map[string]string) {
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(metadata))
}

// Extract returns ctx carrying the remote trace context found in metadata,
// the parent of the spans started from it.
func Extract(ctx context.Context, metadata map[string]string) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(metadata))
}
