package bench

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// chartColors are the colors of a chart's bars or lines, in order.
var chartColors = []string{"#4c78a8", "#f58518", "#e45756", "#54a24b"}

// series is one bar group of the latency chart: a pipeline stage of one
// implementation, with its percentiles.
type series struct {
	label string
	lat   latencies
}

// logAxis maps milliseconds onto the pixels from..to by whole decades
// covering lo..hi; to may be less than from (a vertical axis).
type logAxis struct{ minExp, maxExp, from, to float64 }

func newLogAxis(lo, hi, from, to float64) logAxis {
	minExp, maxExp := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if maxExp == minExp {
		maxExp++
	}
	return logAxis{minExp: minExp, maxExp: maxExp, from: from, to: to}
}

// at is the pixel of v, values below the axis drawn at its start.
func (a logAxis) at(v float64) float64 {
	v = math.Max(v, math.Pow(10, a.minExp))
	return a.from + (math.Log10(v)-a.minExp)/(a.maxExp-a.minExp)*(a.to-a.from)
}

// decades are the axis's grid values, one a decade.
func (a logAxis) decades() []float64 {
	var out []float64
	for e := a.minExp; e <= a.maxExp; e++ {
		out = append(out, math.Pow(10, e))
	}
	return out
}

// writeLatencyChart draws p50/p95/p99 of each series as horizontal bars on a
// logarithmic axis (the forwarder's second-long polls and the relay's
// milliseconds do not fit one linear axis), with a dashed line at targetMS,
// and writes it as dir/name.
func writeLatencyChart(dir, name, title string, targetMS float64, ss []series) error {
	const (
		width, left, right = 860, 250, 40
		barH, gap, top     = 14, 12, 60
	)
	pcts := []string{"p50", "p95", "p99"}
	lo, hi := targetMS, targetMS
	for _, s := range ss {
		for _, v := range []float64{s.lat.p50, s.lat.p95, s.lat.p99} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	ax := newLogAxis(lo, hi, left, width-right)
	height := top + len(ss)*(3*barH+gap) + 50

	var b strings.Builder
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left-230, html.EscapeString(title))
	for i, p := range pcts {
		fmt.Fprintf(&b, `<rect x="%d" y="34" width="12" height="12" fill="%s"/><text x="%d" y="44">%s</text>`+"\n", left+i*70, chartColors[i], left+i*70+16, p)
	}
	axisY := height - 40
	for _, v := range ax.decades() {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", ax.at(v), top-6, ax.at(v), axisY)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s ms</text>`+"\n", ax.at(v), axisY+16, trimFloat(v))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333" stroke-dasharray="4 3"/>`+"\n", ax.at(targetMS), top-6, ax.at(targetMS), axisY)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#333">target p99 %s ms</text>`+"\n", ax.at(targetMS)+4, top-8, trimFloat(targetMS))
	y := top
	for _, s := range ss {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH*3/2+4, html.EscapeString(s.label))
		for i, v := range []float64{s.lat.p50, s.lat.p95, s.lat.p99} {
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y, math.Max(ax.at(v)-left, 1), barH-2, chartColors[i])
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10">%.2f</text>`+"\n", ax.at(v)+4, y+barH-4, v)
			y += barH
		}
		y += gap
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">commit → stage latency, milliseconds, logarithmic axis</text>`+"\n", left, height-8)
	return writeSVG(dir, name, width, height, b.String())
}

// latencySample is one message's commit → publish latency and its commit
// time since the load began.
type latencySample struct{ at, lat time.Duration }

// timeline is one line of the latency-over-time chart: the commit → publish
// latency of each message by its commit time, and when the run's long
// transaction was open.
type timeline struct {
	label       string
	samples     []latencySample
	open, close time.Duration
}

// timelineBucket is the width of a point of the latency-over-time chart:
// each point is the highest latency of the messages committed in it.
const timelineBucket = 100 * time.Millisecond

// writeTimelineChart draws each timeline as a line of the highest commit →
// publish latency per timelineBucket of commit time, on a logarithmic axis
// (polling's seconds under a long transaction and streaming's milliseconds
// do not fit a linear one), shades when each run's long transaction was
// open, draws a dashed line at targetMS and writes it as dir/name.
func writeTimelineChart(dir, name, title string, targetMS float64, ts []timeline) error {
	const (
		width, height           = 860, 440
		left, right, top, below = 70, 30, 70, 50
	)
	lo, hi, end := targetMS, targetMS, time.Second
	for _, t := range ts {
		for _, s := range t.samples {
			if ms := float64(s.lat) / float64(time.Millisecond); ms > 0 {
				lo, hi = math.Min(lo, math.Max(ms, 0.1)), math.Max(hi, ms)
			}
			end = max(end, s.at)
		}
	}
	end = end.Truncate(time.Second) + time.Second
	ay := newLogAxis(lo, hi, height-below, top)
	x := func(d time.Duration) float64 {
		return left + d.Seconds()/end.Seconds()*float64(width-left-right)
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", 20, html.EscapeString(title))
	for i, t := range ts {
		c := chartColors[i%len(chartColors)]
		fmt.Fprintf(&b, `<rect x="%d" y="34" width="12" height="12" fill="%s"/><text x="%d" y="44">%s</text>`+"\n", left+i*260, c, left+i*260+16, html.EscapeString(t.label))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.10"/>`+"\n",
			x(t.open), top, math.Max(x(t.close)-x(t.open), 1), height-below-top, c)
	}
	fmt.Fprintf(&b, `<text x="%d" y="60" fill="#555">shaded: while the run's write transaction was open</text>`+"\n", left)
	for _, v := range ay.decades() {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, ay.at(v), width-right, ay.at(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s ms</text>`+"\n", left-6, ay.at(v)+4, trimFloat(v))
	}
	step := max(time.Second, (end / 10).Round(time.Second))
	for s := time.Duration(0); s <= end; s += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(s), height-below+16, fmt.Sprintf("%.0f s", s.Seconds()))
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#333" stroke-dasharray="4 3"/>`+"\n", left, ay.at(targetMS), width-right, ay.at(targetMS))
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#333" text-anchor="end">target p99 %s ms</text>`+"\n", width-right-4, ay.at(targetMS)-4, trimFloat(targetMS))
	for i, t := range ts {
		var pts []string
		for _, p := range bucketMax(t.samples, timelineBucket) {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.at+timelineBucket/2), ay.at(float64(p.lat)/float64(time.Millisecond))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", chartColors[i%len(chartColors)], strings.Join(pts, " "))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">commit time since the load began; commit → publish, highest of each %s, milliseconds, logarithmic axis</text>`+"\n",
		left, height-8, timelineBucket)
	return writeSVG(dir, name, width, height, b.String())
}

// bucketMax returns, for each width of commit time that has samples, the
// highest latency in it, in time order.
func bucketMax(samples []latencySample, width time.Duration) []latencySample {
	highest := map[time.Duration]time.Duration{}
	for _, s := range samples {
		k := s.at.Truncate(width)
		highest[k] = max(highest[k], s.lat)
	}
	out := make([]latencySample, 0, len(highest))
	for at, lat := range highest {
		out = append(out, latencySample{at: at, lat: lat})
	}
	slices.SortFunc(out, func(a, b latencySample) int { return int(a.at - b.at) })
	return out
}

// writeSVG writes body as an SVG of width × height on white, dir/name.
func writeSVG(dir, name string, width, height int, body string) error {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	b.WriteString(body)
	b.WriteString("</svg>\n")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	return nil
}

func trimFloat(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(fmt.Sprintf("%.3f", v), "0")
}
