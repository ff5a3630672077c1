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
	publishLatency   prometheus.Histogram
	resyncs          *prometheus.CounterVec
	slotLag          prometheus.Gauge
	capture          *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, confirmedAge func() float64) (*metrics, error) {
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
		publishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "outboxd_relay_publish_latency_seconds",
			Help:    "Time from a message's enqueue (its outbox row's created_at, the writing transaction's start) to the broker's acknowledgement; for a short transaction, its commit → publish latency.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18), // 0.5 ms to 65 s
		}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outboxd_relay_capture_resyncs_total",
			Help: "Times WAL capture started on a new replication slot and published every pending row of the outbox table before streaming, by reason: new_slot (first start, or the slot was dropped) or slot_invalidated (the server removed WAL it needed).",
		}, []string{"reason"}),
		slotLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outboxd_relay_slot_lag_bytes",
			Help: "WAL the replication slot keeps for the relay: bytes from its confirmed position to the server's current one. 0 when capturing by polling.",
		}),
		capture: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outboxd_relay_capture",
			Help: "1 for the capture mode this replica runs (poll or wal), 0 for the other.",
		}, []string{"mode"}),
	}
	confirmed := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outboxd_relay_slot_confirmed_age_seconds",
		Help: "Seconds since the replication slot's confirmed position last moved while rows were pending; 0 when nothing is pending or when polling.",
	}, confirmedAge)
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{
		m.backlog, m.oldestPendingAge, m.horizonAge, m.leader,
		m.published, failures, m.deadLettered, m.batchDuration, m.publishLatency,
		m.resyncs, m.slotLag, m.capture, confirmed,
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
