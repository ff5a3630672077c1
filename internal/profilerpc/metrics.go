package profilerpc

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outboxd/outboxd/internal/metrics"
	"github.com/outboxd/outboxd/internal/profile"
)

// Outcomes of a request, the label of outboxd_profile_client_requests_total.
const (
	outcomeFound       = "found"
	outcomeNotFound    = "not_found"
	outcomeTimeout     = "timeout"
	outcomeUnavailable = "unavailable"
	outcomeFailed      = "failed"
	outcomeCanceled    = "canceled"
)

// clientMetrics are a Client's Prometheus metrics.
type clientMetrics struct {
	requests *prometheus.CounterVec
	duration prometheus.Histogram
	late     prometheus.Counter
}

func newClientMetrics(reg prometheus.Registerer) (*clientMetrics, error) {
	m := &clientMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "outboxd", Subsystem: "profile_client", Name: "requests_total",
			Help: "profile.get requests by outcome: found, not_found, timeout, unavailable, failed or canceled.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "outboxd", Subsystem: "profile_client", Name: "request_duration_seconds",
			Help: "Time from sending a profile.get request to its reply or timeout.",
			// Loopback round trips take about a millisecond; the default
			// deadline is 2 s.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 5},
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "outboxd", Subsystem: "profile_client", Name: "late_replies_total",
			Help: "Replies dropped because their request had already timed out (or had its reply).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var errs [3]error
	m.requests, errs[0] = metrics.Register(reg, m.requests)
	m.duration, errs[1] = metrics.Register(reg, m.duration)
	m.late, errs[2] = metrics.Register(reg, m.late)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("register profile client metrics: %w", err)
	}
	return m, nil
}

// observe counts one request by the outcome its error says.
func (m *clientMetrics) observe(err error, elapsed time.Duration) {
	m.duration.Observe(elapsed.Seconds())
	m.requests.WithLabelValues(outcome(err)).Inc()
}

func outcome(err error) string {
	switch {
	case err == nil:
		return outcomeFound
	case errors.Is(err, profile.ErrNotFound):
		return outcomeNotFound
	case errors.Is(err, profile.ErrTimeout):
		return outcomeTimeout
	case errors.Is(err, profile.ErrUnavailable):
		return outcomeUnavailable
	case errors.Is(err, profile.ErrServiceFailed):
		return outcomeFailed
	}
	return outcomeCanceled
}
