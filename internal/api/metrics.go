package api

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus metrics.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	signups  prometheus.Counter
}

// newMetrics creates the API's metrics and registers them on reg.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outboxd_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "outboxd_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by route pattern and method.",
			// Signup is dominated by argon2 (tens of milliseconds) and can
			// queue behind other hashes: cover 1 ms to 10 s.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		signups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outboxd_signups_total",
			Help: "Users created by signup (idempotent replays not counted).",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.signups} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	return m, nil
}
