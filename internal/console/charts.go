package console

import (
	"maps"
	"slices"
	"strings"
)

// Charts is the overview's charts and, when some cannot be drawn, why.
type Charts struct {
	Charts []Chart `json:"charts"`
	// Notes say what is missing and why, in sentences.
	Notes []string `json:"notes"`
}

// charts builds the overview's charts from what was sampled. Throughput and
// latency come only from the /metrics: without them there is nothing true
// to draw, and the notes say so.
//
// The latency chart shows the relay's enqueue → publish latency, each
// interval's mean (outboxd_relay_publish_latency_seconds: from the outbox
// row's created_at to the broker's ack, commit → publish for a short
// transaction), beside the age of the oldest pending message (what the
// next message has waited so far, which rises while nothing is published)
// and the relay's mean batch time (claim → publish → settle).
func (c *Console) charts() Charts {
	out := Charts{Charts: []Chart{}, Notes: []string{}}
	metrics := c.metrics.samples()
	relayOn, workerOn := c.cfg.RelayMetrics != "", c.cfg.WorkerMetrics != ""
	if relayOn || workerOn {
		throughput := Chart{Title: "Messages per second", Unit: "msg/s"}
		if relayOn {
			throughput.Series = append(throughput.Series, rate(metrics, "published by the relay", relayPublished))
		}
		if workerOn {
			throughput.Series = append(throughput.Series, rate(metrics, "handled by the worker (all handlers)", workerHandled))
		}
		out.Charts = append(out.Charts, throughput)
	}
	if relayOn {
		out.Charts = append(out.Charts, Chart{Title: "Publish latency", Unit: "s", Series: []Series{
			ratio(metrics, "enqueue → publish, mean of each interval", relayLatencySum, relayLatencyCount),
			gauge(metrics, "oldest pending message's age (what the next one has waited so far)", relayOldestAge),
			ratio(metrics, "relay batch time, mean (claim → publish → settle)", relayBatchSum, relayBatchCount),
		}})
	}
	out.Charts = append(out.Charts, Chart{Title: "Backlog, read from SQL", Unit: "messages", Series: []Series{
		gauge(c.backlog.samples(), "pending in the outbox", "pending"),
	}})
	switch {
	case !relayOn && !workerOn:
		out.Notes = append(out.Notes, "CONSOLE_RELAY_METRICS and CONSOLE_WORKER_METRICS are not set, so the console has no publish rate or latency to chart: it shows the backlog it reads from SQL only.")
	case !relayOn:
		out.Notes = append(out.Notes, "CONSOLE_RELAY_METRICS is not set: no publish rate or latency.")
	case !workerOn:
		out.Notes = append(out.Notes, "CONSOLE_WORKER_METRICS is not set: no handler rate.")
	}
	if n := len(metrics); relayOn && n > 0 {
		if leader, ok := metrics[n-1].values[relayLeader]; ok && leader == 0 {
			out.Notes = append(out.Notes, "The relay at CONSOLE_RELAY_METRICS does not lead (outboxd_relay_leader is 0): another replica publishes, so its rate and batch times here stay at zero.")
		}
	}
	errs := c.sampler.errors()
	for _, source := range slices.Sorted(maps.Keys(errs)) {
		out.Notes = append(out.Notes, "The "+source+"'s /metrics did not answer its last sample ("+oneLine(errs[source])+").")
	}
	return out
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
