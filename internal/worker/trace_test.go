package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/outboxd/outboxd/internal/worker"
	"github.com/outboxd/outboxd/outbox"
)

// spans records the spans of every test; each test picks its own by trace
// id.
var spans = tracetest.NewSpanRecorder()

func init() {
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
}

func TestHandlersContinueTheMessageTrace(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.start(t)
	ev := newEvent("Ann")
	insertUser(t, b.pool, ev)
	id := uuid.New()
	msg := newMessage(t, id, ev, "")
	// A trace of its own each run: the recorder keeps every run's spans.
	traceID := strings.ReplaceAll(uuid.NewString(), "-", "")
	parentID := traceID[:16]
	msg.Metadata.Set(outbox.MetadataTraceparent, "00-"+traceID+"-"+parentID+"-01")
	b.publish(t, msg)
	waitProcessed(t, b.pool, id, 3, 10*time.Second)

	var got []string
	require.True(t, assertEventually(5*time.Second, func() bool {
		got = got[:0]
		for _, s := range spans.Ended() {
			if s.SpanContext().TraceID().String() != traceID {
				continue
			}
			require.Equal(t, parentID, s.Parent().SpanID().String())
			require.Equal(t, trace.SpanKindConsumer, s.SpanKind())
			got = append(got, s.Name())
		}
		return len(got) == 3
	}))
	for _, h := range worker.AllHandlers {
		require.Contains(t, got, "process user.created "+h)
	}
}
