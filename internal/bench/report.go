package bench

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Row is one figure measured twice: by outboxd and by its baseline.
type Row struct {
	// Figure names what is measured, for example "signups/s, 16 clients".
	Figure string
	// Unit is the figure's unit: "msg/s", "ms", "%".
	Unit string
	// Ours is outboxd's value.
	Ours float64
	// Baseline is the ceiling's (or the competitor's) value; 0 when the
	// figure has none.
	Baseline float64
	// LowerIsBetter marks latencies, whose ratio is baseline/ours so that
	// the ratio always reads "share of the baseline reached".
	LowerIsBetter bool
	// Goal is the figure's target, when it has one; a table with any goal
	// prints a target and a met column.
	Goal *Goal
}

// Goal is a figure's target and whether the figure reached it.
type Goal struct {
	// Text states the target: "≤ 5 ms", "≥ 0.5 × raw".
	Text string
	// Met tells whether Ours reached it.
	Met bool
}

// goal is a Goal stated by text and reached when met.
func goal(met bool, format string, args ...any) *Goal {
	return &Goal{Text: fmt.Sprintf(format, args...), Met: met}
}

// Ratio is the share of the baseline outboxd reaches: ours/baseline for
// rates, baseline/ours for latencies; 0 without a baseline.
func (r Row) Ratio() float64 {
	if r.Baseline == 0 || r.Ours == 0 {
		return 0
	}
	if r.LowerIsBetter {
		return r.Baseline / r.Ours
	}
	return r.Ours / r.Baseline
}

// Table is the result of one benchmark.
type Table struct {
	// Name is the benchmark, also the base name of its files.
	Name string
	// Title says what the table compares.
	Title string
	// Baseline names the baseline column: "ceiling" or "forwarder".
	Baseline string
	// Rows are the figures, in the order they print.
	Rows []Row
	// Notes say how the figures were measured and what limits them.
	Notes []string
}

// formatValue prints a measured value; small rates (an idle cost in tx/s)
// keep two decimals.
func formatValue(v float64, unit string) string {
	switch {
	case unit == "ms":
		return strconv.FormatFloat(v, 'f', 2, 64)
	case unit == "%":
		return strconv.FormatFloat(v, 'f', 1, 64) + " %"
	case math.Abs(v) < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

// formatBaseline is formatValue, or "–" for a figure without a baseline.
func formatBaseline(v float64, unit string) string {
	if v == 0 {
		return "–"
	}
	return formatValue(v, unit)
}

func formatRatio(r Row) string {
	if r.Ratio() == 0 {
		return "–"
	}
	return strconv.FormatFloat(r.Ratio(), 'f', 2, 64)
}

// hasGoals tells whether any row has a target, and so the table a target
// and a met column.
func (t Table) hasGoals() bool {
	return slices.ContainsFunc(t.Rows, func(r Row) bool { return r.Goal != nil })
}

// goalCells are r's target and met cells.
func (r Row) goalCells() []string {
	switch {
	case r.Goal == nil:
		return []string{"", ""}
	case r.Goal.Met:
		return []string{r.Goal.Text, "yes"}
	default:
		return []string{r.Goal.Text, "no"}
	}
}

func (t Table) cells() [][]string {
	goals := t.hasGoals()
	header := []string{"figure", "unit", "ours", t.Baseline, "ratio"}
	if goals {
		header = append(header, "target", "met")
	}
	out := [][]string{header}
	for _, r := range t.Rows {
		row := []string{r.Figure, r.Unit, formatValue(r.Ours, r.Unit), formatBaseline(r.Baseline, r.Unit), formatRatio(r)}
		if goals {
			row = append(row, r.goalCells()...)
		}
		out = append(out, row)
	}
	return out
}

// WriteText prints t as an aligned text table.
func (t Table) WriteText(w io.Writer) error {
	cells := t.cells()
	widths := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n", t.Title)
	for n, row := range cells {
		var line strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i == 0 {
				line.WriteString(c + pad)
			} else {
				line.WriteString("  " + pad + c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
		if n == 0 {
			total := len(widths)*2 - 2
			for _, w := range widths {
				total += w
			}
			b.WriteString(strings.Repeat("-", total) + "\n")
		}
	}
	for _, n := range t.Notes {
		fmt.Fprintf(&b, "  * %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes t as a Markdown section.
func (t Table) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", t.Title)
	for n, row := range t.cells() {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		if n == 0 {
			b.WriteString("| --- | --- | ---: | ---: | ---: |")
			if len(row) > 5 {
				b.WriteString(" --- | --- |")
			}
			b.WriteString("\n")
		}
	}
	if len(t.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range t.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCSV writes t's rows with raw values, for tools.
func (t Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	goals := t.hasGoals()
	header := []string{"benchmark", "figure", "unit", "ours", t.Baseline, "ratio"}
	if goals {
		header = append(header, "target", "met")
	}
	_ = cw.Write(header)
	for _, r := range t.Rows {
		rec := []string{t.Name, r.Figure, r.Unit,
			strconv.FormatFloat(r.Ours, 'f', 3, 64), strconv.FormatFloat(r.Baseline, 'f', 3, 64),
			strconv.FormatFloat(r.Ratio(), 'f', 3, 64)}
		if goals {
			rec = append(rec, r.goalCells()...)
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

// save writes t as dir/<name>.md and dir/<name>.csv.
func (t Table) save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results dir: %w", err)
	}
	for ext, write := range map[string]func(io.Writer) error{".md": t.WriteMarkdown, ".csv": t.WriteCSV} {
		path := filepath.Join(dir, t.Name+ext)
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		werr := write(f)
		if err := f.Close(); werr == nil {
			werr = err
		}
		if werr != nil {
			return fmt.Errorf("write %s: %w", path, werr)
		}
	}
	return nil
}
