package soak_test

import (
	"fmt"
	"html"
	"math"
	"os"
	"strings"
)

// The long soak's chart is small multiples on linear axes, one panel per
// measure and minutes along the bottom. internal/bench's charts are a
// logarithmic bar chart and a latency timeline of single messages, with
// unexported helpers, so this file draws its own rather than widen that
// package's API for a test.

// soakChartColors are the colors of a panel's lines, in order.
var soakChartColors = []string{"#4c78a8", "#f58518", "#e45756", "#54a24b", "#b279a2", "#9d755d"}

// chartLine is one line of a panel: a value per sample, NaN where there is
// none.
type chartLine struct {
	label  string
	values []float64
}

// chartPanel is one measure, with its unit, drawn on a linear axis from 0.
type chartPanel struct {
	title string
	lines []chartLine
}

// writeSoakChart draws panels one above the other over minutes (the x of
// each sample), shades the warm-up (minutes before warmup, which the run's
// limits ignore) and writes the SVG as path.
func writeSoakChart(path, title string, minutes []float64, warmup float64, panels []chartPanel) error {
	const (
		width, left, right = 900, 80, 190
		panelH, panelGap   = 170, 50
		top                = 50
	)
	height := top + len(panels)*(panelH+panelGap) + 20
	last := 1.0
	for _, m := range minutes {
		last = math.Max(last, m)
	}
	x := func(m float64) float64 { return left + m/last*float64(width-left-right) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="20" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	for p, panel := range panels {
		y0 := top + p*(panelH+panelGap) + 20 // the panel's top
		y1 := y0 + panelH                    // its axis
		hi := 0.0
		for _, l := range panel.lines {
			for _, v := range l.values {
				if !math.IsNaN(v) {
					hi = math.Max(hi, v)
				}
			}
		}
		step := niceStep(hi / 4)
		hi = math.Max(step*math.Ceil(hi/step), step)
		y := func(v float64) float64 { return float64(y1) - v/hi*panelH }

		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", left, y0-8, html.EscapeString(panel.title))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="#999" fill-opacity="0.12"/>`+"\n",
			left, y0, x(warmup)-left, panelH)
		for v := 0.0; v <= hi+step/2; v += step {
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(v), width-right, y(v))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, axisLabel(v))
		}
		tick := math.Max(1, math.Ceil(last/10))
		for m := 0.0; m <= last; m += tick {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(m), y1+15, axisLabel(m))
		}
		for i, l := range panel.lines {
			c := soakChartColors[i%len(soakChartColors)]
			var pts []string
			for k, v := range l.values {
				if k < len(minutes) && !math.IsNaN(v) {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(minutes[k]), y(v)))
				}
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", c, strings.Join(pts, " "))
			ly := y0 + 10 + i*16
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
				width-right+12, ly-10, c, width-right+28, ly, html.EscapeString(l.label))
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">minutes since the load began; shaded: warm-up, outside the run's limits</text>`+"\n", left, height-8)
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// niceStep is the smallest 1, 2 or 5 times a power of ten at least raw.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, f := range []float64{1, 2, 5, 10} {
		if f*mag >= raw {
			return f * mag
		}
	}
	return 10 * mag
}

func axisLabel(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}
