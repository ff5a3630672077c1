package relay

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// publishRuns publishes rows through bp in runs: each run holds the next
// message of every key that has one (and every message of the empty key,
// which carries no order), so at most one message per key is ever
// unacknowledged while all keys pipeline. A key stops at its first failure;
// the first transient failure ends the batch after its run, and is
// returned.
func (r *Relay) publishRuns(ctx context.Context, bp BatchPublisher, rows []row, states []rowState) error {
	// queues holds, per key in order of first appearance, the indexes of its
	// rows still to publish; the empty key's rows each stand alone.
	var queues [][]int
	byKey := make(map[string]int)
	for i := range rows {
		if rows[i].key == "" {
			queues = append(queues, []int{i})
			continue
		}
		q, ok := byKey[rows[i].key]
		if !ok {
			q = len(queues)
			byKey[rows[i].key] = q
			queues = append(queues, nil)
		}
		queues[q] = append(queues[q], i)
	}

	run := make([]Outgoing, 0, len(queues))
	idx := make([]int, 0, len(queues))
	spans := make([]trace.Span, 0, len(queues))
	for ctx.Err() == nil {
		run, idx, spans = run[:0], idx[:0], spans[:0]
		for q, rest := range queues {
			if len(rest) == 0 {
				continue
			}
			i := rest[0]
			msg, err := newMessage(ctx, &rows[i])
			if err != nil {
				// A row whose metadata does not decode can never be published.
				states[i].err = fmt.Errorf("%w: %w", ErrPermanent, err)
				queues[q] = nil
				continue
			}
			spans = append(spans, r.startPublishSpan(ctx, msg, rows[i].topic))
			run = append(run, Outgoing{Topic: rows[i].topic, Message: msg})
			idx = append(idx, q)
		}
		if len(run) == 0 {
			return nil
		}
		errs := bp.PublishBatch(ctx, run)
		var (
			transient error
			published bool
		)
		for j, q := range idx {
			i := queues[q][0]
			err := errs[j]
			if err != nil {
				err = fmt.Errorf("publish message %s to %s: %w", rows[i].messageID, rows[i].topic, err)
				spans[j].RecordError(err)
				spans[j].SetStatus(codes.Error, "publish failed")
			}
			spans[j].End()
			switch {
			case err == nil:
				states[i].published, published = true, true
				queues[q] = queues[q][1:]
				r.metrics.publishLatency.Observe(time.Since(rows[i].createdAt).Seconds())
			case ctx.Err() != nil:
				// Stopping, not failing: the message is published again later.
				queues[q] = nil
			case r.permanent(err):
				states[i].err = err
				queues[q] = nil
			default:
				if transient == nil {
					transient = err
				}
				queues[q] = nil
			}
		}
		if published {
			r.progress.Store(time.Now().UnixNano())
		}
		if transient != nil {
			return transient
		}
	}
	return nil
}
