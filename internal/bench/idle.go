package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/outboxd/outboxd/relay"
)

// idleTargetTxPerSecond is issue 11's target for what the relay in wal
// costs an idle database.
const idleTargetTxPerSecond = 1

// idleWarmup is how long a relay runs before its idle transactions are
// counted, so that its start (leader lock, slot, first pass) is not, and
// the counts that backends report to the statistics up to a second late
// have arrived.
const idleWarmup = 3 * time.Second

// runIdle counts the transactions of the bench database on an empty outbox
// with no relay, then with the relay in each capture mode, and reports what
// each mode costs net of the baseline.
func runIdle(ctx context.Context, e *env) ([]Table, error) {
	if err := e.resetTables(ctx); err != nil {
		return nil, err
	}
	base, err := e.idleTxRate(ctx, "idle: no relay (baseline)")
	if err != nil {
		return nil, err
	}
	net := map[relay.Capture]float64{}
	for _, mode := range captureModes {
		r, err := e.startRelay(ctx, &countingPublisher{}, 0, mode)
		if err != nil {
			return nil, err
		}
		rate, err := e.idleTxRate(ctx, fmt.Sprintf("idle: relay in %s", mode))
		r.stop()
		if err != nil {
			return nil, err
		}
		net[mode] = rate - base
	}
	wal := Row{Figure: "relay in wal: transactions/s it causes on an empty outbox, net of the baseline", Unit: "tx/s",
		Ours: net[relay.CaptureWAL], Baseline: net[relay.CapturePoll], LowerIsBetter: true}
	wal.Goal = goal(wal.Ours <= idleTargetTxPerSecond, "≤ %d tx/s", idleTargetTxPerSecond)
	t := Table{
		Name:     "idle",
		Title:    fmt.Sprintf("idle: transactions/s the relay causes on an empty outbox, wal vs poll, %s each", e.cfg.IdleDuration),
		Baseline: "poll",
		Rows: []Row{
			wal,
			{Figure: "relay in poll: transactions/s it causes on an empty outbox, net of the baseline", Unit: "tx/s", Ours: net[relay.CapturePoll]},
			{Figure: "no relay: transactions/s of the bench database (the baseline)", Unit: "tx/s", Ours: base},
		},
		Notes: []string{
			"transactions = xact_commit + xact_rollback of the bench database in pg_stat_database, read before and after each window",
			fmt.Sprintf("each window opens %s after its relay started (its start-up is not counted) and lasts %s; the baseline is a window with no relay, subtracted from the others", idleWarmup, e.cfg.IdleDuration),
			"the relays run at their defaults (poll: 1 s poll interval, NOTIFY; wal: 10 s status interval) with nothing enqueued; both also run the 5 s metrics pass",
			"backends report their counts to the statistics up to a second late, and autovacuum's visits count too: a net figure moves by a few transactions per window",
			fmt.Sprintf("target (issue 11): wal ≤ %d tx/s", idleTargetTxPerSecond),
		},
	}
	return []Table{t}, nil
}

// idleTxRate waits idleWarmup, or less for a short window, then returns the
// bench database's transactions per second over e.cfg.IdleDuration.
func (e *env) idleTxRate(ctx context.Context, label string) (float64, error) {
	fmt.Fprintf(e.cfg.Progress, "%s: counting transactions for %s\n", label, e.cfg.IdleDuration)
	if !sleepCtx(ctx, min(idleWarmup, e.cfg.IdleDuration)) {
		return 0, ctx.Err()
	}
	count := func() (int64, time.Time, error) {
		var n int64
		err := e.pool.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("%s: read pg_stat_database: %w", label, err)
		}
		return n, time.Now(), nil
	}
	n0, t0, err := count()
	if err != nil {
		return 0, err
	}
	if !sleepCtx(ctx, e.cfg.IdleDuration) {
		return 0, ctx.Err()
	}
	n1, t1, err := count()
	if err != nil {
		return 0, err
	}
	return float64(n1-n0) / t1.Sub(t0).Seconds(), nil
}
