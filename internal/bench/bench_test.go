package bench_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outboxd/outboxd/internal/bench"
	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/cli"
	"github.com/outboxd/outboxd/internal/pgtest"
)

// tinyConfig makes every benchmark finish in seconds: the tests prove the
// wiring and the outputs, not the figures.
func tinyConfig(t *testing.T) bench.Config {
	return bench.Config{
		DatabaseURL: pgtest.AdminURL(),
		Duration:    300 * time.Millisecond,
		Concurrency: 2,
		Messages:    600,
		Rate:        100,
		LongTx:      500 * time.Millisecond,
		// Short windows: the idle figures are then noise, but they come out.
		IdleDuration: time.Second,
		// Every transport runs: NATS embedded, RabbitMQ and Redis on their
		// local ports, Kafka on an in-process kfake unless KAFKA_BROKERS
		// names a cluster.
		KafkaBrokers: os.Getenv("KAFKA_BROKERS"),
		Sizes:        []int{300, 600, 1200},
		OutDir:       t.TempDir(),
	}
}

// wantFigures are, by benchmark, figures its table must have (a part of
// their name) with a measured value, and whether the figure has a target.
var wantFigures = map[string][]struct {
	figure string
	goal   bool
}{
	"enqueue": {
		{"user + EnqueueBatch (NOTIFY) vs user alone", false},
		{"user + Writer{WithoutNotify: true}.EnqueueBatch vs user alone", false},
		{"Writer{WithoutNotify: true}.EnqueueBatch overhead", true},
		{"pg_logical_emit_message instead of a row overhead", false},
	},
	"latency": {
		{"commit → publish p99", true},
		{"commit → handler p99", false},
		{"commit → publish p50, committed while a 500ms write transaction was open", false},
		{"commit → publish p99, committed while a 500ms write transaction was open", true},
		{"oldest open transaction in the cluster during the long-transaction run", false},
	},
	"capture": {
		{"sustained capture, first commit → last row out: relay in wal, no-op publisher vs raw pglogrepl receive loop", true},
		{"writers' commit rate meanwhile", false},
	},
	"relay": {
		{"no-op publisher vs raw claim-and-delete SQL loop", false},
		{"NATS JetStream vs raw nats.go PublishAsync loop", true},
		{"RabbitMQ vs raw amqp091 loop, publisher confirms", true},
		{"Redis Streams vs raw go-redis pipelined XADD loop", true},
		{"Kafka (", true},
		{"PostgreSQL (watermill-sql) vs raw claim-and-delete SQL loop", true},
	},
	"flat": {
		{"drain rate, no-op publisher, 300-row backlog", false},
		{"drain rate, no-op publisher, 1200-row backlog", true},
		{"drain rate, NATS JetStream, 600-row backlog", false},
		{"drain rate, NATS JetStream, 1200-row backlog", true},
		{"claim before the drain, 1200-row backlog: execution time", false},
		{"claim before the drain, 1200-row backlog: shared buffers hit", false},
		{"claim half-way through the drain, 300-row backlog: execution time", false},
		{"claim half-way through the drain, 1200-row backlog: shared buffers hit", false},
	},
	"worker": {
		{"profile + audit: worker vs raw batched SQL loop", true},
		{"the broker's side: raw nats.go consume loop", false},
		{"drain, profile + audit: worker vs combined ceiling", false},
		{"email + profile + audit: worker users/s vs raw mail loop mails/s", true},
		{"worker users/s vs raw mail loop with 16 sends at once", false},
		{"the broker's side with email: raw nats.go consume loop (three", false},
		{"drain, email + profile + audit: worker vs combined ceiling", false},
		{"drain, email + profile + audit: CPU per user, worker process", false},
		{"drain, email + profile + audit: CPU per user, PostgreSQL", false},
		{"raw mail loop: CPU per mail, bench process", false},
		{"with a worker costing no CPU", false},
		{"commit → profile row p50: new worker vs today's", false},
		{"commit → profile row p99: new worker vs today's", true},
		{"worker RSS during the profile + audit drain, peak", false},
		{"worker RSS during the profile + audit drain, median", false},
	},
	"idle": {
		{"relay in wal: transactions/s it causes on an empty outbox, net of the baseline", true},
		{"relay in poll: transactions/s it causes on an empty outbox, net of the baseline", false},
		{"no relay: transactions/s of the bench database (the baseline)", false},
	},
}

// extraTables are, by benchmark, the names of the tables it returns after
// its own.
var extraTables = map[string][]string{"flat": {"flat-retention"}}

// files are, by benchmark, the EXPLAIN files it writes besides its tables.
var files = map[string][]string{
	"flat": {"explain-300.txt", "explain-600.txt", "explain-1200.txt", "explain-retention-600.txt"},
}

// isDifference tells a figure that may be zero or negative in a tiny run:
// the difference of two measurements (an overhead, a net cost), or the
// oldest open transaction of a run without a long one, which a quiet
// machine's 50 ms samples may find none of (CI saw 0 in the latency and
// the forwarder benchmarks). The long-transaction run's must be positive.
func isDifference(r bench.Row) bool {
	return r.Unit == "%" || strings.Contains(r.Figure, "net of the baseline") ||
		strings.Contains(r.Figure, "oldest open transaction") && !strings.Contains(r.Figure, "long-transaction run")
}

// isCPUTime tells a CPU time row, which counts /proc's 10 ms ticks: a
// tiny run's share of a process may round to none.
func isCPUTime(r bench.Row) bool { return strings.Contains(r.Figure, "CPU per") }

// TestRunEachBenchmark runs every benchmark small against the real
// PostgreSQL and an embedded NATS, and checks its table and files.
func TestRunEachBenchmark(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs every benchmark")
	}
	charts := map[string]string{"latency": "latency.svg", "forwarder": "latency-vs-forwarder.svg", "worker": "worker-latency.svg"}
	// timelines are the latency-over-time charts, with their number of
	// lines.
	timelines := map[string]map[string]int{"latency": {"latency-long-tx.svg": 2}}
	for _, name := range bench.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := tinyConfig(t)
			var out bytes.Buffer
			cfg.Out = &out
			tables, err := bench.Run(context.Background(), name, cfg)
			require.NoError(t, err)
			require.Len(t, tables, len(extraTables[name])+1)
			tb := tables[0]
			require.Equal(t, name, tb.Name)
			for i, extra := range extraTables[name] {
				require.Equal(t, extra, tables[i+1].Name)
			}
			for _, tb := range tables {
				require.NotEmpty(t, tb.Rows)
				for _, r := range tb.Rows {
					// Overheads and net costs may be negative in a noisy
					// tiny run; rates, latencies and costs are measured,
					// so never zero.
					if !isDifference(r) && !isCPUTime(r) {
						require.Positive(t, r.Ours, "%s: %s", tb.Name, r.Figure)
					}
					if r.Baseline > 0 && !isDifference(r) {
						require.Positive(t, r.Ratio(), "%s: %s", tb.Name, r.Figure)
					}
				}
			}
			for _, want := range wantFigures[name] {
				i := slices.IndexFunc(tb.Rows, func(r bench.Row) bool { return strings.Contains(r.Figure, want.figure) })
				require.NotEqual(t, -1, i, "%s has a row %q", name, want.figure)
				require.Equal(t, want.goal, tb.Rows[i].Goal != nil, "%s: %q has a target", name, want.figure)
			}
			if name == "idle" {
				// The relay in poll makes a transaction a second at the
				// least, whatever the noise of the baseline.
				gross := tb.Rows[1].Ours + tb.Rows[2].Ours
				require.Positive(t, gross, "idle: transactions/s with the relay in poll")
				require.GreaterOrEqual(t, tb.Rows[2].Ours, 0.0, "idle: baseline")
			}
			for _, tb := range tables {
				require.Contains(t, out.String(), tb.Title)
				md, err := os.ReadFile(filepath.Join(cfg.OutDir, tb.Name+".md"))
				require.NoError(t, err)
				require.Contains(t, string(md), "| figure | unit | ours |")
			}
			f, err := os.Open(filepath.Join(cfg.OutDir, name+".csv"))
			require.NoError(t, err)
			defer f.Close()
			records, err := csv.NewReader(f).ReadAll()
			require.NoError(t, err)
			require.Len(t, records, len(tb.Rows)+1, "a header and one record per row")
			if len(wantFigures[name]) > 0 {
				require.Equal(t, []string{"target", "met"}, records[0][len(records[0])-2:], "a table with targets has their columns")
			}

			for _, file := range files[name] {
				b, err := os.ReadFile(filepath.Join(cfg.OutDir, file))
				require.NoError(t, err)
				require.Contains(t, string(b), "Execution Time:", "%s is an EXPLAIN ANALYZE", file)
				require.Contains(t, string(b), "Buffers: shared hit=", "%s counts buffers", file)
			}
			if chart, ok := charts[name]; ok {
				require.Greater(t, svgElements(t, filepath.Join(cfg.OutDir, chart))["rect"], 6, "bars were drawn")
			}
			for chart, lines := range timelines[name] {
				require.Equal(t, lines, svgElements(t, filepath.Join(cfg.OutDir, chart))["polyline"], "one line a run")
			}
		})
	}
}

// TestCommandLineRunsBenchmark runs `outboxd bench enqueue` through the
// command line: the subcommand selects the benchmark and the flags reach it.
func TestCommandLineRunsBenchmark(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"bench", "enqueue",
		"--database-url", pgtest.AdminURL(), "--duration", "200ms", "--concurrency", "1", "--out", dir,
	}, &stdout, &stderr)
	require.Zero(t, code, stderr.String())
	require.Contains(t, stdout.String(), "enqueue: signup transaction")
	require.Contains(t, stdout.String(), "1 in flight")
	require.NotContains(t, stdout.String(), "8 in flight", "--concurrency replaces the default counts")
	require.Contains(t, stderr.String(), "enqueue 1 in flight", "progress goes to stderr")
	_, err := os.Stat(filepath.Join(dir, "enqueue.csv"))
	require.NoError(t, err)
}

// TestCommandLineChoosesTransports runs `outboxd bench relay --brokers
// redis`: the relay drains to Redis alone beside its raw loop, and an
// unknown transport fails before anything runs.
func TestCommandLineChoosesTransports(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"bench", "relay",
		"--database-url", pgtest.AdminURL(), "--messages", "300", "--brokers", "redis", "--out", dir,
	}, &stdout, &stderr)
	require.Zero(t, code, stderr.String())
	require.Contains(t, stdout.String(), "Redis Streams vs raw go-redis pipelined XADD loop")
	require.Contains(t, stdout.String(), "no-op publisher vs raw claim-and-delete SQL loop")
	for _, other := range []string{"NATS JetStream vs", "RabbitMQ vs", "Kafka (", "PostgreSQL (watermill-sql) vs"} {
		require.NotContains(t, stdout.String(), other)
	}

	stdout.Reset()
	stderr.Reset()
	code = cli.Main(context.Background(), []string{"bench", "relay",
		"--database-url", pgtest.AdminURL(), "--brokers", "nats,mqtt", "--out", dir,
	}, &stdout, &stderr)
	require.NotZero(t, code)
	require.Contains(t, stderr.String(), `--brokers: unknown broker kind "mqtt"`)
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	_, err := bench.Run(context.Background(), "relay", bench.Config{
		Duration: -time.Second, Rate: -1, LongTx: -time.Second, IdleDuration: -time.Second, TxRows: -1,
		Retention: -time.Hour, Brokers: []broker.Kind{"mqtt"}, Sizes: []int{100, 0}, SMTPDelay: -time.Second,
	})
	for _, field := range []string{"Duration", "Rate", "LongTx", "IdleDuration", "TxRows", "Retention", "Brokers", "Sizes", "SMTPDelay"} {
		require.ErrorContains(t, err, field)
	}

	_, err = bench.Run(context.Background(), "nope", bench.Config{})
	require.ErrorContains(t, err, "unknown benchmark")
}

func TestRowRatioReadsAsShareOfBaseline(t *testing.T) {
	t.Parallel()
	require.InDelta(t, 0.5, bench.Row{Ours: 50, Baseline: 100}.Ratio(), 1e-9, "a rate at half the ceiling")
	require.InDelta(t, 0.5, bench.Row{Ours: 40, Baseline: 20, LowerIsBetter: true}.Ratio(), 1e-9, "a latency twice the target")
	require.Zero(t, bench.Row{Ours: 50}.Ratio(), "no baseline, no ratio")
}

func TestTableWritesAlignedText(t *testing.T) {
	t.Parallel()
	tb := bench.Table{Name: "x", Title: "x: demo", Baseline: "ceiling", Rows: []bench.Row{
		{Figure: "rate", Unit: "msg/s", Ours: 1000, Baseline: 2000},
		{Figure: "p99", Unit: "ms", Ours: 4, Baseline: 2, LowerIsBetter: true},
	}, Notes: []string{"a note"}}
	var b strings.Builder
	require.NoError(t, tb.WriteText(&b))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Equal(t, "x: demo", lines[0])
	require.Len(t, lines[1], len(lines[3]), "columns line up")
	require.Contains(t, lines[3], "0.50")
	require.Contains(t, lines[4], "4.00")
	require.Contains(t, lines[5], "a note")
}

func TestTableWritesTargetColumns(t *testing.T) {
	t.Parallel()
	tb := bench.Table{Name: "x", Title: "x: demo", Baseline: "poll", Rows: []bench.Row{
		{Figure: "p99", Unit: "ms", Ours: 2, Baseline: 4, LowerIsBetter: true, Goal: &bench.Goal{Text: "≤ 5 ms", Met: true}},
		{Figure: "net", Unit: "tx/s", Ours: 0.25},
	}}
	var text, md, csvOut strings.Builder
	require.NoError(t, tb.WriteText(&text))
	require.NoError(t, tb.WriteMarkdown(&md))
	require.NoError(t, tb.WriteCSV(&csvOut))
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	require.True(t, strings.HasSuffix(lines[1], "target  met"), lines[1])
	require.True(t, strings.HasSuffix(lines[3], "≤ 5 ms  yes"), lines[3])
	require.True(t, strings.HasSuffix(lines[4], "0.25     –      –"), "small rates keep decimals, a row without target ends at its ratio: %q", lines[4])
	require.Contains(t, md.String(), "| figure | unit | ours | poll | ratio | target | met |\n| --- | --- | ---: | ---: | ---: | --- | --- |\n")
	records, err := csv.NewReader(strings.NewReader(csvOut.String())).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"x", "p99", "ms", "2.000", "4.000", "2.000", "≤ 5 ms", "yes"}, records[1])
}

// svgElements checks that the chart at path is well-formed XML and counts
// its elements by name.
func svgElements(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	d := xml.NewDecoder(f)
	counts := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "the chart is well-formed XML")
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
	return counts
}
