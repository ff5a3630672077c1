package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/metrics"
)

func TestRegister(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "test_total", Help: "A test counter."}

	first, err := metrics.Register(reg, prometheus.NewCounter(opts))
	require.NoError(t, err)
	second, err := metrics.Register(reg, prometheus.NewCounter(opts))
	require.NoError(t, err, "the same metric again is shared, not an error")
	require.Same(t, first, second)

	_, err = metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_total", Help: "A test counter."}))
	require.Error(t, err, "another type under the name is not the existing collector")

	_, err = metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "Another help."}))
	require.Error(t, err, "a conflicting description is not a registration of the same metric")
}
