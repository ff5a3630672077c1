package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outboxd/outboxd/internal/metrics"
)

// handlerMetrics are the worker's Prometheus metrics, each labelled by handler.
type handlerMetrics struct {
	handled      *prometheus.CounterVec
	failed       *prometheus.CounterVec
	retried      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	duplicates   *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	batchSize    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*handlerMetrics, error) {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "outboxd", Subsystem: "worker", Name: name, Help: help,
		}, []string{"handler"})
	}
	m := &handlerMetrics{
		handled:      counter("messages_handled_total", "Messages a handler processed successfully, duplicates included."),
		failed:       counter("messages_failed_total", "Failed attempts at a message."),
		retried:      counter("messages_retried_total", "Attempts that retried a failed one."),
		deadLettered: counter("messages_dead_lettered_total", "Messages stored in dead_letters after the last failed attempt."),
		duplicates:   counter("messages_duplicate_total", "Redelivered messages the inbox recognised and skipped."),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "outboxd", Subsystem: "worker", Name: "handler_duration_seconds",
			Help:    "Duration of each attempt at a message.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"handler"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "outboxd", Subsystem: "worker", Name: "batch_size",
			Help:    "Messages in each transaction of a batched handler (profile, audit).",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500},
		}, []string{"handler"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs [7]error
	m.handled, errs[0] = metrics.Register(reg, m.handled)
	m.failed, errs[1] = metrics.Register(reg, m.failed)
	m.retried, errs[2] = metrics.Register(reg, m.retried)
	m.deadLettered, errs[3] = metrics.Register(reg, m.deadLettered)
	m.duplicates, errs[4] = metrics.Register(reg, m.duplicates)
	m.duration, errs[5] = metrics.Register(reg, m.duration)
	m.batchSize, errs[6] = metrics.Register(reg, m.batchSize)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("register worker metrics: %w", err)
	}
	return m, nil
}

// instrument counts each attempt as handled or failed, counts retries and
// times the attempt; failures are logged as warnings (the dead letter, if it
// comes to that, is logged as an error).
func instrument(handler string, m *handlerMetrics, logger *slog.Logger) message.HandlerMiddleware {
	// The handler's series, looked up once rather than per message.
	retried, duration := m.retried.WithLabelValues(handler), m.duration.WithLabelValues(handler)
	failed, handled := m.failed.WithLabelValues(handler), m.handled.WithLabelValues(handler)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context()
			n := attempt(ctx)
			if n > 1 {
				retried.Inc()
			}
			start := time.Now()
			out, err := h(msg)
			duration.Observe(time.Since(start).Seconds())
			if err != nil {
				failed.Inc()
				loggerFrom(ctx, logger).WarnContext(ctx, "handler attempt failed", "attempt", n, "error", err)
				return out, err
			}
			handled.Inc()
			return out, nil
		}
	}
}
