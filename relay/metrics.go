package relay

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the relay's Prometheus collectors. Counters and the histogram
// move on the hot path; the gauges that need SQL are set by collectStats.
type metrics struct {
	backlog          prometheus.Gauge
	oldestPendingAge prometheus.Gauge
	horizonAge       prometheus.Gauge
	leader           prometheus.Gauge
	published        prometheus.Counter
	transient        prometheus.Counter
	permanent        prometheus.Counter
	deadLettered     prometheus.Counter
	batchDuration    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outboxd_relay_publish_failures_total",
		Help: "Messages the publisher failed to publish, by kind: transient (broker down, retried without counting) or permanent (rejected, counted towards dead-lettering).",
	}, []string{"kind"})
	m := &metrics{
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outboxd_relay_backlog",
			Help: "Outbox rows not yet published.",
		}),
		oldestPendingAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outboxd_relay_oldest_pending_age_seconds",
			Help: "Age of the oldest outbox row not yet published; 0 when none.",
		}),
		horizonAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outboxd_relay_horizon_age_seconds",
			Help: "Age of the oldest open transaction of the outbox's database holding back the visibility horizon (it has an xid or a snapshot, or is prepared); 0 when none. Rows of transactions that got their xid after it wait for it to end.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outboxd_relay_leader",
			Help: "1 while this replica holds the leader lock and publishes, 0 otherwise.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outboxd_relay_published_total",
			Help: "Messages published to the broker.",
		}),
		transient: failures.WithLabelValues("transient"),
		permanent: failures.WithLabelValues("permanent"),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outboxd_relay_dead_lettered_total",
			Help: "Messages moved to outbox_dead_letters after their last permanent failure.",
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "outboxd_relay_batch_duration_seconds",
			Help:    "Time to claim, publish and settle one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms to 16 s
		}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{
		m.backlog, m.oldestPendingAge, m.horizonAge, m.leader,
		m.published, failures, m.deadLettered, m.batchDuration,
	} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register relay metrics: %w", err)
	}
	return m, nil
}
