package console

import (
	"sync"
	"time"
)

// sample is the values read at one moment, by name.
type sample struct {
	at     time.Time
	values map[string]float64
}

// history keeps the samples of the last window, oldest first, in memory:
// the console needs no Prometheus to chart the last minutes.
type history struct {
	window time.Duration
	mu     sync.Mutex
	all    []sample
}

// add appends a sample taken at at and forgets those older than the window.
func (h *history) add(at time.Time, values map[string]float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.all = append(h.all, sample{at: at, values: values})
	cut := 0
	for cut < len(h.all) && at.Sub(h.all[cut].at) > h.window {
		cut++
	}
	h.all = h.all[cut:]
}

// samples returns a copy of the samples kept.
func (h *history) samples() []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sample(nil), h.all...)
}

// Point is one point of a chart's series: a time in Unix milliseconds and a
// value, null where the value is unknown (the line breaks there).
type Point [2]*float64

// Series is one line of a chart.
type Series struct {
	// Label names the line in the legend, saying what it measures.
	Label  string  `json:"label"`
	Points []Point `json:"points"`
}

// Chart is what the overview draws: series over the last minutes.
type Chart struct {
	Title string `json:"title"`
	// Unit is the unit of every series' values.
	Unit   string   `json:"unit"`
	Series []Series `json:"series"`
}

func point(at time.Time, v *float64) Point {
	ms := float64(at.UnixMilli())
	return Point{&ms, v}
}

// gauge is the series of one value as sampled.
func gauge(samples []sample, label, name string) Series {
	s := Series{Label: label, Points: []Point{}}
	for _, x := range samples {
		var v *float64
		if val, ok := x.values[name]; ok {
			v = &val
		}
		s.Points = append(s.Points, point(x.at, v))
	}
	return s
}

// rate is the per-second increase of counter name between samples; unknown
// across a reset (a restarted process counts from zero again).
func rate(samples []sample, label, name string) Series {
	return ratio(samples, label, name, "")
}

// ratio is the increase of num divided by the increase of den between
// samples (the mean of a histogram: its _sum over its _count), or per
// second when den is "". Unknown where den did not move.
func ratio(samples []sample, label, num, den string) Series {
	s := Series{Label: label, Points: []Point{}}
	for i := 1; i < len(samples); i++ {
		prev, cur := samples[i-1], samples[i]
		var v *float64
		n0, ok0 := prev.values[num]
		n1, ok1 := cur.values[num]
		d := cur.at.Sub(prev.at).Seconds()
		if den != "" {
			d0, okd0 := prev.values[den]
			d1, okd1 := cur.values[den]
			ok0, ok1, d = ok0 && okd0, ok1 && okd1, d1-d0
		}
		if ok0 && ok1 && n1 >= n0 && d > 0 {
			r := (n1 - n0) / d
			v = &r
		}
		s.Points = append(s.Points, point(cur.at, v))
	}
	return s
}
