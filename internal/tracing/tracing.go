// Package tracing sets up OpenTelemetry for an outboxd process and carries
// trace context through message metadata, so one trace shows a signup, the
// relay's publish and every handler's work.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// EnvEndpoint turns on the OTLP exporter when set.
const EnvEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT"

// Setup installs the W3C trace-context propagator and, when
// OTEL_EXPORTER_OTLP_ENDPOINT is set, a tracer provider exporting spans over
// OTLP/HTTP (the exporter reads the standard OTEL_* variables). Without the
// variable, spans are not recorded but trace context still flows. The
// returned function flushes and stops the exporter.
func Setup(ctx context.Context, service string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(Propagator)
	if os.Getenv(EnvEndpoint) == "" {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service)))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
