package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
)

// walChunkState tracks how many rows of a chunk are not settled yet.
type walChunkState struct {
	unsettled int
	end       pglogrepl.LSN
}

// walRow is a streamed row waiting to be published and settled.
type walRow struct {
	row
	chunk *walChunkState
}

// walProcessor publishes streamed rows through the same lanes, spans,
// retries and dead letters as polling. Rows stay in commit order; a row the
// broker rejected waits for its retry in memory, holding back the later
// rows of its key while the other keys flow on, and the slot's confirmed
// position stops before its transaction until it is settled.
type walProcessor struct {
	r   *Relay
	pos *walPosition
	// queue holds the unsettled rows in commit order.
	queue []*walRow
	// chunks holds the unsettled chunks in commit order.
	chunks []*walChunkState
	// held maps a key whose first queued row failed permanently to the
	// time of its next attempt.
	held map[string]time.Time
}

func (p *walProcessor) run(ctx context.Context, in <-chan walChunk) error {
	r := p.r
	failures := 0
	for {
		if ctx.Err() != nil || !p.fill(ctx, in) {
			return nil
		}
		batch := p.eligible(time.Now())
		if len(batch) == 0 {
			continue
		}
		start := time.Now()
		rows := make([]row, len(batch))
		for i, w := range batch {
			rows[i] = w.row
		}
		if err := p.awaitVisible(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			delay := backoff(failures, r.cfg.RetryBackoffMin, r.cfg.RetryBackoffMax)
			r.log.Warn("relay: batch failed, retrying", "error", err, "failures", failures, "retry_in", delay)
			if !sleep(ctx, delay) {
				return nil
			}
			continue
		}
		out := r.publishBatch(ctx, rows)
		dead, err := r.record(ctx, start, out)
		if err != nil {
			// Unrecorded: the rows stay queued and are published again.
			out.transient = err
		} else {
			p.settle(batch, out, dead)
		}
		if out.transient != nil {
			if err == nil {
				r.metrics.transient.Inc()
			}
			failures++
			delay := backoff(failures, r.cfg.RetryBackoffMin, r.cfg.RetryBackoffMax)
			r.log.Warn("relay: batch failed, retrying", "error", out.transient, "failures", failures, "retry_in", delay)
			if !sleep(ctx, delay) {
				return nil
			}
			continue
		}
		failures = 0
	}
}

// awaitVisible waits until the transactions of batch are visible to other
// sessions. The walsender streams a commit once its WAL is flushed, which
// can be a moment before the committing backend makes it visible: a
// consumer handed the message then would not find the writer's rows yet
// (a profile's user), and the relay's own delete would find no row.
func (p *walProcessor) awaitVisible(ctx context.Context, batch []*walRow) error {
	xids := make([]uint64, 0, len(batch))
	for _, w := range batch {
		xids = append(xids, w.xid)
	}
	for attempt := 1; ; attempt++ {
		var invisible int
		err := p.r.pool.QueryRow(ctx, `
SELECT count(*) FROM unnest($1::xid8[]) AS x WHERE NOT pg_visible_in_snapshot(x, pg_current_snapshot())`, xids).Scan(&invisible)
		if err != nil {
			return fmt.Errorf("wait for streamed commits to be visible: %w", err)
		}
		if invisible == 0 {
			return nil
		}
		// The gap is microseconds: asking again at once costs a round trip,
		// a timer would cost a scheduler tick on a busy machine.
		if attempt > 10 && !sleep(ctx, 100*time.Microsecond) {
			return ctx.Err()
		}
	}
}

// fill takes the chunks the stream has ready, waiting for one (or a held
// key's retry) when nothing is eligible. It returns false when ctx ends.
func (p *walProcessor) fill(ctx context.Context, in <-chan walChunk) bool {
	for p.countEligible(time.Now()) < p.r.cfg.BatchSize {
		select {
		case c := <-in:
			p.add(c)
			continue
		default:
		}
		if p.countEligible(time.Now()) > 0 {
			return ctx.Err() == nil
		}
		var (
			retry <-chan time.Time
			timer *time.Timer
		)
		if next, ok := p.nextRetry(); ok {
			timer = time.NewTimer(time.Until(next))
			retry = timer.C
		}
		p.r.progress.Store(time.Now().UnixNano())
		select {
		case <-ctx.Done():
		case c := <-in:
			p.add(c)
		case <-retry:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return false
		}
	}
	return ctx.Err() == nil
}

func (p *walProcessor) add(c walChunk) {
	st := &walChunkState{unsettled: len(c.rows), end: c.end}
	p.chunks = append(p.chunks, st)
	for i := range c.rows {
		p.queue = append(p.queue, &walRow{row: c.rows[i], chunk: st})
	}
	p.confirm()
}

// eligible returns up to BatchSize queued rows in commit order, leaving out
// the rows of keys held until after now.
func (p *walProcessor) eligible(now time.Time) []*walRow {
	out := make([]*walRow, 0, min(len(p.queue), p.r.cfg.BatchSize))
	for _, w := range p.queue {
		if len(out) == p.r.cfg.BatchSize {
			break
		}
		if until, ok := p.held[w.key]; ok {
			if now.Before(until) {
				continue
			}
			delete(p.held, w.key)
		}
		out = append(out, w)
	}
	return out
}

func (p *walProcessor) countEligible(now time.Time) int {
	n := 0
	for _, w := range p.queue {
		if until, ok := p.held[w.key]; ok && now.Before(until) {
			continue
		}
		if n++; n == p.r.cfg.BatchSize {
			break
		}
	}
	return n
}

func (p *walProcessor) nextRetry() (time.Time, bool) {
	var next time.Time
	for _, t := range p.held {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next, !next.IsZero()
}

// settle applies a recorded outcome: published and dead-lettered rows leave
// the queue, a permanently failed one holds its key until its retry.
func (p *walProcessor) settle(batch []*walRow, out outcome, dead []deadLetter) {
	done := make(map[int64]bool, len(out.published)+len(dead))
	for _, id := range out.published {
		done[id] = true
	}
	for _, d := range dead {
		done[d.id] = true
	}
	now := time.Now()
	for _, f := range out.failures {
		if done[f.row.id] {
			continue
		}
		p.held[f.row.key] = now.Add(f.delay)
	}
	for _, w := range batch {
		if done[w.id] {
			w.chunk.unsettled--
			continue
		}
		for _, f := range out.failures {
			if f.row.id == w.id {
				w.attempts++
			}
		}
	}
	kept := p.queue[:0]
	for _, w := range p.queue {
		if !done[w.id] {
			kept = append(kept, w)
		}
	}
	clear(p.queue[len(kept):])
	p.queue = kept
	p.confirm()
}

// confirm moves the slot's confirmed position past the settled prefix of
// transactions.
func (p *walProcessor) confirm() {
	n := 0
	for _, c := range p.chunks {
		if c.unsettled > 0 {
			break
		}
		if c.end != 0 {
			p.pos.advance(c.end)
		}
		n++
	}
	if n == 0 {
		return
	}
	clear(p.chunks[:n])
	p.chunks = p.chunks[n:]
	// After the advance: the stream may skip ahead only once nothing is
	// outstanding, and what is settled is behind the position already.
	p.pos.outstanding.Add(-int64(n))
}
