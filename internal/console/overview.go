package console

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/outboxd/outboxd/internal/status"
)

// staleHeartbeat is when a relay's heartbeat says it no longer leads: the
// leader refreshes it every few seconds.
const staleHeartbeat = 30 * time.Second

// Overview is the overview page's content, as the page shows it and as
// /api/overview returns it for the page to refresh itself. Figures are
// formatted here, once, so that the script only places text.
type Overview struct {
	At string `json:"at"`
	// Tiles are the headline figures by name: pending, oldest, relay,
	// heartbeat, capture, lag, dead_letters.
	Tiles       map[string]string `json:"tiles"`
	Backlog     []TopicRow        `json:"backlog"`
	DeadLetters []HandlerRow      `json:"dead_letters"`
	Charts      Charts            `json:"charts"`
	// Error is why the figures could not be refreshed, "" when they were.
	Error string `json:"error,omitempty"`
}

// TopicRow is the backlog of one topic.
type TopicRow struct {
	Topic   string `json:"topic"`
	Pending string `json:"pending"`
	Oldest  string `json:"oldest"`
}

// HandlerRow is the dead letters of one handler ("relay" for the relay's).
type HandlerRow struct {
	Handler string `json:"handler"`
	Count   string `json:"count"`
	// Link lists them.
	Link string `json:"link"`
}

func (c *Console) overview(r *http.Request) Overview {
	s := c.snaps.latest(r.Context())
	o := Overview{
		At:     s.At.UTC().Format(time.DateTime + " UTC"),
		Tiles:  map[string]string{},
		Charts: c.charts(),
		Error:  s.Err,
	}
	o.Tiles["pending"] = fmt.Sprint(s.Pending)
	o.Tiles["oldest"] = "none pending"
	if s.Pending > 0 {
		o.Tiles["oldest"] = seconds(s.OldestPendingAgeSeconds)
	}
	o.Tiles["relay"], o.Tiles["heartbeat"] = relayTiles(s.Relay)
	o.Tiles["capture"], o.Tiles["lag"] = c.captureTiles(s)
	var total int64
	for _, d := range s.DeadLetters {
		total += d.Count
		link := "/deadletters?" + url.Values{"handler": {d.Handler}}.Encode()
		if d.Handler == status.RelayHandler {
			link = "/deadletters?source=" + SourceRelay
		}
		o.DeadLetters = append(o.DeadLetters, HandlerRow{Handler: d.Handler, Count: fmt.Sprint(d.Count), Link: c.cfg.PathPrefix + link})
	}
	o.Tiles["dead_letters"] = fmt.Sprint(total)
	for _, b := range s.Backlog {
		o.Backlog = append(o.Backlog, TopicRow{Topic: b.Topic, Pending: fmt.Sprint(b.Pending), Oldest: seconds(b.OldestPendingAgeSeconds)})
	}
	o.Backlog, o.DeadLetters = nonNil(o.Backlog), nonNil(o.DeadLetters)
	return o
}

func relayTiles(a *status.ActiveRelay) (name, heartbeat string) {
	if a == nil {
		return "none has led yet", "never"
	}
	heartbeat = seconds(a.HeartbeatAgeSeconds) + " ago"
	if time.Duration(a.HeartbeatAgeSeconds*float64(time.Second)) > staleHeartbeat {
		return a.Name + " (stale: no relay leads)", heartbeat
	}
	return a.Name, heartbeat
}

// captureTiles says how the relay captures and how far behind it is: the
// mode from the relay's /metrics when sampled, else from whether a
// replication slot of relay_slot is being streamed; the lag from the slot.
func (c *Console) captureTiles(s Snapshot) (mode, lag string) {
	var last map[string]float64
	if all := c.metrics.samples(); len(all) > 0 {
		last = all[len(all)-1].values
	}
	switch {
	case last[relayCaptureWAL] == 1:
		mode = "wal (relay /metrics)"
	case last[relayCapturePoll] == 1:
		mode = "poll (relay /metrics)"
	case s.Slot != nil && s.Slot.Active:
		mode = "wal (slot " + s.Slot.Name + " is streamed)"
	case s.Relay != nil:
		mode = "poll (no replication slot is streamed)"
	default:
		mode = "unknown (no relay)"
	}
	switch v, ok := last[relaySlotLag]; {
	case s.Slot != nil:
		lag = byteSize(s.Slot.LagBytes) + " of WAL held by slot " + s.Slot.Name
	case ok && last[relayCaptureWAL] == 1:
		lag = byteSize(int64(v)) + " (relay /metrics)"
	default:
		lag = "none (no replication slot)"
	}
	return mode, lag
}

func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}

func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
