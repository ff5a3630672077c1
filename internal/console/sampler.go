package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The values the console reads from the relay's and the worker's /metrics,
// by the names it keeps them under.
const (
	relayPublished    = "relay_published"
	relayOldestAge    = "relay_oldest_pending_age"
	relayBatchSum     = "relay_batch_seconds_sum"
	relayBatchCount   = "relay_batch_count"
	relayLatencySum   = "relay_publish_latency_seconds_sum"
	relayLatencyCount = "relay_publish_latency_count"
	relayCaptureWAL   = "relay_capture_wal"
	relayCapturePoll  = "relay_capture_poll"
	relaySlotLag      = "relay_slot_lag"
	relayLeader       = "relay_leader"
	workerHandled     = "worker_handled"
	workerDeadLetters = "worker_dead_lettered"
)

// metricsSource is one /metrics the console samples.
type metricsSource struct {
	name string // relay or worker
	url  string
	read func(families map[string]*dto.MetricFamily, into map[string]float64)
}

// sampler scrapes the configured /metrics every interval into a history.
type sampler struct {
	sources []metricsSource
	client  *http.Client
	hist    *history
	logger  *slog.Logger

	mu       sync.Mutex
	lastErr  map[string]string    // by source: why its last scrape failed
	lastSeen map[string]time.Time // by source: when it last answered
}

func newSampler(cfg Config, hist *history) *sampler {
	s := &sampler{
		client:   &http.Client{Timeout: 2 * time.Second},
		hist:     hist,
		logger:   cfg.Logger,
		lastErr:  map[string]string{},
		lastSeen: map[string]time.Time{},
	}
	if cfg.RelayMetrics != "" {
		s.sources = append(s.sources, metricsSource{name: "relay", url: cfg.RelayMetrics, read: readRelay})
	}
	if cfg.WorkerMetrics != "" {
		s.sources = append(s.sources, metricsSource{name: "worker", url: cfg.WorkerMetrics, read: readWorker})
	}
	return s
}

func readRelay(f map[string]*dto.MetricFamily, into map[string]float64) {
	sum(f, "outboxd_relay_published_total", relayPublished, into)
	sum(f, "outboxd_relay_oldest_pending_age_seconds", relayOldestAge, into)
	sum(f, "outboxd_relay_slot_lag_bytes", relaySlotLag, into)
	sum(f, "outboxd_relay_leader", relayLeader, into)
	histogram(f, "outboxd_relay_batch_duration_seconds", relayBatchSum, relayBatchCount, into)
	histogram(f, "outboxd_relay_publish_latency_seconds", relayLatencySum, relayLatencyCount, into)
	if fam := f["outboxd_relay_capture"]; fam != nil {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "mode" {
					into["relay_capture_"+l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
}

func readWorker(f map[string]*dto.MetricFamily, into map[string]float64) {
	sum(f, "outboxd_worker_messages_handled_total", workerHandled, into)
	sum(f, "outboxd_worker_messages_dead_lettered_total", workerDeadLetters, into)
}

// histogram keeps the sum and count of family's histograms over their
// labels, so that the increase of one over the other is an interval's mean.
func histogram(f map[string]*dto.MetricFamily, family, sumName, countName string, into map[string]float64) {
	fam := f[family]
	if fam == nil {
		return
	}
	var s float64
	var n uint64
	for _, m := range fam.GetMetric() {
		s += m.GetHistogram().GetSampleSum()
		n += m.GetHistogram().GetSampleCount()
	}
	into[sumName], into[countName] = s, float64(n)
}

// sum keeps the sum of family's counters or gauges over their labels.
func sum(f map[string]*dto.MetricFamily, family, name string, into map[string]float64) {
	fam := f[family]
	if fam == nil {
		return
	}
	var v float64
	for _, m := range fam.GetMetric() {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	into[name] = v
}

// run samples until ctx ends.
func (s *sampler) run(ctx context.Context, interval time.Duration) {
	if len(s.sources) == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.sampleOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleOnce scrapes every source and adds one sample of what answered.
func (s *sampler) sampleOnce(ctx context.Context) {
	values := map[string]float64{}
	scraped := map[string]map[string]*dto.MetricFamily{} // dev serves both on one URL
	for _, src := range s.sources {
		families, err := scraped[src.url], error(nil)
		if families == nil {
			families, err = s.scrape(ctx, src.url)
			scraped[src.url] = families
		}
		s.mu.Lock()
		if err != nil {
			if ctx.Err() == nil && s.lastErr[src.name] == "" {
				s.logger.WarnContext(ctx, "console: cannot sample metrics", "source", src.name, "url", src.url, "error", err)
			}
			s.lastErr[src.name] = err.Error()
		} else {
			s.lastErr[src.name] = ""
			s.lastSeen[src.name] = time.Now()
			src.read(families, values)
		}
		s.mu.Unlock()
	}
	s.hist.add(time.Now(), values)
}

func (s *sampler) scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	return families, nil
}

// errors returns, by source name, why its last scrape failed.
func (s *sampler) errors() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.lastErr {
		if v != "" {
			out[k] = v
		}
	}
	return out
}
