package bench

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/relay"
)

// flatTarget is issue 12's target: the drain rate of the largest backlog
// is at least this share of the smallest's.
const flatTarget = 0.8

// claimCost is what EXPLAIN (ANALYZE, BUFFERS) says of one claim.
type claimCost struct {
	execMS    float64
	hit, read int64
}

var (
	explainExecution = regexp.MustCompile(`(?m)^Execution Time: ([0-9.]+) ms`)
	explainBuffers   = regexp.MustCompile(`(?m)^\s*Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?`)
)

// parseExplain reads a claim's execution time and the shared buffers its
// plan's top node hit and read, children and InitPlans included (the first
// Buffers line; the planning's come after the plan).
func parseExplain(plan string) (claimCost, error) {
	var c claimCost
	m := explainExecution.FindStringSubmatch(plan)
	if m == nil {
		return c, fmt.Errorf("no execution time in the plan:\n%s", plan)
	}
	c.execMS, _ = strconv.ParseFloat(m[1], 64)
	b := explainBuffers.FindStringSubmatch(plan)
	if b == nil {
		return c, fmt.Errorf("no shared buffers in the plan:\n%s", plan)
	}
	c.hit, _ = strconv.ParseInt(cmp.Or(b[1], "0"), 10, 64)
	c.read, _ = strconv.ParseInt(cmp.Or(b[2], "0"), 10, 64)
	return c, nil
}

// explainRecorder runs relay.ExplainClaim at chosen moments of a drain,
// keeping each plan with its heading for the explain file and its cost
// for the table.
type explainRecorder struct {
	e     *env
	text  strings.Builder
	costs map[string]claimCost
}

func (e *env) newExplainRecorder() *explainRecorder {
	return &explainRecorder{e: e, costs: map[string]claimCost{}}
}

// at returns a drain hook that explains a claim under heading, kept as
// name.
func (x *explainRecorder) at(name, heading string) func(context.Context) error {
	return func(ctx context.Context) error {
		plan, err := relay.ExplainClaim(ctx, x.e.pool, relay.BatchSizeDefault)
		if err != nil {
			return err
		}
		c, err := parseExplain(plan)
		if err != nil {
			return err
		}
		x.costs[name] = c
		fmt.Fprintf(&x.text, "-- %s\n%s\n", heading, plan)
		return nil
	}
}

// save writes the plans to the out dir as file.
func (x *explainRecorder) save(file string) error {
	if err := os.MkdirAll(x.e.cfg.OutDir, 0o755); err != nil {
		return fmt.Errorf("results dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(x.e.cfg.OutDir, file), []byte(x.text.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// flatPoint is one backlog size of the flat benchmark.
type flatPoint struct {
	size       int
	noop, nats float64
	start, mid claimCost
}

// runFlat drains backlogs of each of Config.Sizes rows with a no-op
// publisher and into NATS JetStream (relay in poll, no retention), and
// explains a claim at each size before the drain and half-way through it;
// then it drains Config.Messages rows to the no-op publisher with a
// retention of Config.Retention and without, and explains a claim half-way
// through each.
func runFlat(ctx context.Context, e *env) ([]Table, error) {
	sizes := slices.Clone(e.cfg.Sizes)
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	natsPub, err := broker.NewPublisher(ctx, e.brokerConfig())
	if err != nil {
		return nil, err
	}
	defer natsPub.Close()

	points := make([]flatPoint, 0, len(sizes))
	for _, size := range sizes {
		p := flatPoint{size: size}
		x := e.newExplainRecorder()
		p.noop, err = e.relayDrainWith(ctx, fmt.Sprintf("flat: %d rows, no-op publisher", size), &countingPublisher{}, size, drainOpts{
			before: x.at("start", fmt.Sprintf("claim of %d rows, backlog of %d rows, before the drain (freshly filled and vacuumed)", relay.BatchSizeDefault, size)),
			midway: x.at("mid", fmt.Sprintf("claim of %d rows, backlog of %d rows, half-way through the no-op drain (%d published and deleted)", relay.BatchSizeDefault, size, size/2)),
		})
		if err != nil {
			return nil, err
		}
		p.start, p.mid = x.costs["start"], x.costs["mid"]
		if err := x.save(fmt.Sprintf("explain-%d.txt", size)); err != nil {
			return nil, err
		}
		if err := e.purgeIfExists(ctx); err != nil {
			return nil, err
		}
		p.nats, err = e.relayDrain(ctx, fmt.Sprintf("flat: %d rows, NATS JetStream", size), &countingPublisher{pub: natsPub}, size)
		if err != nil {
			return nil, err
		}
		points = append(points, p)
	}

	retention, err := e.retentionTable(ctx)
	if err != nil {
		return nil, err
	}
	return []Table{flatTable(points), retention}, nil
}

// flatTable compares each size with the smallest.
func flatTable(points []flatPoint) Table {
	first, last := points[0], points[len(points)-1]
	var rows []Row
	for _, d := range []struct {
		name string
		rate func(flatPoint) float64
	}{
		{"no-op publisher", func(p flatPoint) float64 { return p.noop }},
		{"NATS JetStream", func(p flatPoint) float64 { return p.nats }},
	} {
		for i, p := range points {
			r := Row{Figure: fmt.Sprintf("drain rate, %s, %d-row backlog", d.name, p.size), Unit: "msg/s", Ours: d.rate(p)}
			if i > 0 {
				r.Baseline = d.rate(first)
			}
			if i > 0 && p.size == last.size {
				r.Goal = goal(r.Ratio() >= flatTarget, "≥ %.1f × %d rows", flatTarget, first.size)
			}
			rows = append(rows, r)
		}
	}
	for _, c := range []struct {
		when string
		cost func(flatPoint) claimCost
	}{
		{"before the drain", func(p flatPoint) claimCost { return p.start }},
		{"half-way through the drain", func(p flatPoint) claimCost { return p.mid }},
	} {
		for i, p := range points {
			exec := Row{Figure: fmt.Sprintf("claim %s, %d-row backlog: execution time", c.when, p.size), Unit: "ms", Ours: c.cost(p).execMS, LowerIsBetter: true}
			hit := Row{Figure: fmt.Sprintf("claim %s, %d-row backlog: shared buffers hit", c.when, p.size), Unit: "buffers", Ours: float64(c.cost(p).hit), LowerIsBetter: true}
			if i > 0 {
				exec.Baseline, hit.Baseline = c.cost(first).execMS, float64(c.cost(first).hit)
			}
			rows = append(rows, exec, hit)
		}
	}
	sizes := make([]string, len(points))
	reads := make([]string, len(points))
	for i, p := range points {
		sizes[i] = strconv.Itoa(p.size)
		reads[i] = fmt.Sprintf("%d rows: %d and %d", p.size, p.start.read, p.mid.read)
	}
	return Table{
		Name:     "flat",
		Title:    fmt.Sprintf("flat: drains of backlogs of %s rows (relay in poll, no retention, %d rows a claim), each size against the smallest", strings.Join(sizes, ", "), relay.BatchSizeDefault),
		Baseline: fmt.Sprintf("%d rows", first.size),
		Rows:     rows,
		Notes: []string{
			"one drain each, one after the other: per size the no-op drain, then the NATS drain (embedded JetStream, the stream purged before); the backlog is refilled and the table vacuumed before each",
			"the relay publishes through a relay.BatchPublisher (the no-op one, or broker.NewPublisher's), in pipelined runs as in production",
			fmt.Sprintf("claim costs: relay.ExplainClaim, EXPLAIN (ANALYZE, BUFFERS) of the relay's own claim statement (LIMIT %d, under the horizon, no ids left out), run beside the no-op drain: once the backlog is filled, before the relay starts, and once half of it is published; plans in explain-<size>.txt", relay.BatchSizeDefault),
			"shared buffers hit are the plan's top node's, children and InitPlans included; the buffers read besides (pages fetched from the OS) before and half-way through the drain: " + strings.Join(reads, "; "),
			"ratio = size/smallest for rates and smallest/size for claim costs: 1.00 is flat",
		},
	}
}

// retentionTable drains Config.Messages rows to the no-op publisher
// without retention and with Config.Retention, and explains a claim
// half-way through each.
func (e *env) retentionTable(ctx context.Context) (Table, error) {
	n := cmp.Or(e.cfg.Messages, MessagesDefault)
	x := e.newExplainRecorder()
	type run struct {
		rate  float64
		bytes int64
	}
	var none, kept run
	for _, r := range []struct {
		name      string
		retention time.Duration
		into      *run
	}{{"none", 0, &none}, {"kept", e.cfg.Retention, &kept}} {
		label := fmt.Sprintf("flat: %d rows, no-op publisher, no retention", n)
		heading := fmt.Sprintf("claim of %d rows, backlog of %d rows, half-way through the no-op drain without retention (%d published and deleted)", relay.BatchSizeDefault, n, n/2)
		if r.retention > 0 {
			label = fmt.Sprintf("flat: %d rows, no-op publisher, retention %s", n, e.cfg.Retention)
			heading = fmt.Sprintf("claim of %d rows, backlog of %d rows, half-way through the no-op drain with a retention of %s (%d published and kept)", relay.BatchSizeDefault, n, e.cfg.Retention, n/2)
		}
		rate, err := e.relayDrainWith(ctx, label, &countingPublisher{}, n, drainOpts{
			retention: r.retention,
			midway:    x.at(r.name, heading),
		})
		if err != nil {
			return Table{}, err
		}
		r.into.rate = rate
		if err := e.pool.QueryRow(ctx, `SELECT pg_total_relation_size('outbox')`).Scan(&r.into.bytes); err != nil {
			return Table{}, fmt.Errorf("outbox size: %w", err)
		}
	}
	if err := x.save(fmt.Sprintf("explain-retention-%d.txt", n)); err != nil {
		return Table{}, err
	}
	c0, c1 := x.costs["none"], x.costs["kept"]
	const mb = 1 << 20
	return Table{
		Name:     "flat-retention",
		Title:    fmt.Sprintf("flat-retention: drain of %d rows to the no-op publisher with a retention of %s vs without (relay in poll)", n, e.cfg.Retention),
		Baseline: "no retention",
		Rows: []Row{
			{Figure: "drain rate", Unit: "msg/s", Ours: kept.rate, Baseline: none.rate},
			{Figure: "claim half-way through the drain: execution time", Unit: "ms", Ours: c1.execMS, Baseline: c0.execMS, LowerIsBetter: true},
			{Figure: "claim half-way through the drain: shared buffers hit", Unit: "buffers", Ours: float64(c1.hit), Baseline: float64(c0.hit), LowerIsBetter: true},
			{Figure: "outbox table size after the drain, indexes and TOAST included", Unit: "MB", Ours: float64(kept.bytes) / mb, Baseline: float64(none.bytes) / mb, LowerIsBetter: true},
		},
		Notes: []string{
			"one drain each, without retention first; the backlog is refilled (TRUNCATE) and the table vacuumed before each",
			"with a retention the relay marks published rows (published_at) instead of deleting them; its purge pass deletes them after the retention, which no drain here reaches",
			fmt.Sprintf("claim costs: relay.ExplainClaim once half of the backlog is published; plans in explain-retention-%d.txt; shared buffers read besides: %d with retention, %d without", n, c1.read, c0.read),
		},
	}, nil
}
