package console

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func values(s Series) []any {
	out := make([]any, len(s.Points))
	for i, p := range s.Points {
		if p[1] == nil {
			out[i] = nil
		} else {
			out[i] = *p[1]
		}
	}
	return out
}

func TestSeries(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	h := &history{window: 10 * time.Second}
	for i, v := range []map[string]float64{
		{"c": 0, "sum": 0, "n": 0, "g": 1},
		{"c": 10, "sum": 1, "n": 4, "g": 2},  // 10/s, mean 0.25
		{"c": 10, "sum": 1, "n": 4},          // idle: 0/s, no mean; g unknown
		{"c": 3, "sum": 0.1, "n": 1, "g": 3}, // a restart: unknown
		{"c": 9, "sum": 0.7, "n": 3, "g": 4}, // 6/s, mean 0.3
	} {
		h.add(t0.Add(time.Duration(i)*time.Second), v)
	}
	all := h.samples()
	require.Equal(t, []any{10.0, 0.0, nil, 6.0}, values(rate(all, "", "c")))
	mean := values(ratio(all, "", "sum", "n"))
	require.InDelta(t, 0.25, mean[0], 1e-9)
	require.Equal(t, []any{nil, nil}, mean[1:3], "no batch, no mean; none across a restart")
	require.InDelta(t, 0.3, mean[3], 1e-9)
	require.Equal(t, []any{1.0, 2.0, nil, 3.0, 4.0}, values(gauge(all, "", "g")))

	h.add(t0.Add(14*time.Second), map[string]float64{"g": 5})
	require.Len(t, h.samples(), 2, "only the window is kept")
}

func TestFormatPayload(t *testing.T) {
	t.Parallel()
	p := formatPayload([]byte(`{"a":[1,2],"b":"<x>"}`))
	require.Equal(t, "JSON", p.Kind)
	require.Equal(t, "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": \"<x>\"\n}", p.Text)

	big := make([]byte, 0, 200<<10)
	big = append(big, `["`...)
	for len(big) < 100<<10 {
		big = append(big, "é"...)
	}
	big = append(big, `"]`...)
	p = formatPayload(big)
	require.Equal(t, "JSON", p.Kind)
	require.LessOrEqual(t, len(p.Text), payloadLimit)
	require.Positive(t, p.Cut)
	require.Equal(t, len(big), p.Size)

	p = formatPayload([]byte("plain text"))
	require.Equal(t, "text", p.Kind)
	p = formatPayload([]byte{0xff, 0x00, 0x10})
	require.Equal(t, "binary (hex)", p.Kind)
	require.Equal(t, "ff 00 10", p.Text)
}

func TestCursorOrder(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 123456000, time.UTC)
	c := Cursor{FailedAt: at, Source: SourceRelay, ID: 7}
	parsed, err := parseCursor(c.String())
	require.NoError(t, err)
	require.Equal(t, c, parsed)
	// After a relay row, the handlers' rows of the same time are still to
	// come, the relay's only with lower ids.
	_, id := c.before(SourceHandler)
	require.Equal(t, int64(1<<63-1), id)
	_, id = c.before(SourceRelay)
	require.Equal(t, int64(7), id)
	_, id = Cursor{FailedAt: at, Source: SourceHandler, ID: 7}.before(SourceRelay)
	require.Zero(t, id, "after a handler row, no relay row of the same time")
	_, err = parseCursor("yesterday,relay,1")
	require.Error(t, err)
}
