package bench

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// series is one bar group of the latency chart: a pipeline stage of one
// implementation, with its percentiles.
type series struct {
	label string
	lat   latencies
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
	colors := []string{"#4c78a8", "#f58518", "#e45756"}
	pcts := []string{"p50", "p95", "p99"}
	lo, hi := targetMS, targetMS
	for _, s := range ss {
		for _, v := range []float64{s.lat.p50, s.lat.p95, s.lat.p99} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	minExp, maxExp := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if maxExp == minExp {
		maxExp++
	}
	x := func(v float64) float64 {
		v = math.Max(v, math.Pow(10, minExp))
		return left + (math.Log10(v)-minExp)/(maxExp-minExp)*float64(width-left-right)
	}
	height := top + len(ss)*(3*barH+gap) + 50

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left-230, html.EscapeString(title))
	for i, p := range pcts {
		fmt.Fprintf(&b, `<rect x="%d" y="34" width="12" height="12" fill="%s"/><text x="%d" y="44">%s</text>`+"\n", left+i*70, colors[i], left+i*70+16, p)
	}
	axisY := height - 40
	for e := minExp; e <= maxExp; e++ {
		v := math.Pow(10, e)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(v), top-6, x(v), axisY)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s ms</text>`+"\n", x(v), axisY+16, trimFloat(v))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333" stroke-dasharray="4 3"/>`+"\n", x(targetMS), top-6, x(targetMS), axisY)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#333">target p99 %s ms</text>`+"\n", x(targetMS)+4, top-8, trimFloat(targetMS))
	y := top
	for _, s := range ss {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH*3/2+4, html.EscapeString(s.label))
		for i, v := range []float64{s.lat.p50, s.lat.p95, s.lat.p99} {
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y, math.Max(x(v)-left, 1), barH-2, colors[i])
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10">%.2f</text>`+"\n", x(v)+4, y+barH-4, v)
			y += barH
		}
		y += gap
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">commit → stage latency, milliseconds, logarithmic axis</text>`+"\n", left, height-8)
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
