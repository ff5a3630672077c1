package worker

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/outboxd/outboxd/outbox/inbox"
)

// effectSet writes the effects of the deliveries of a batch in one
// statement, as an inbox.SetEffect does, with tx alone.
type effectSet func(ctx context.Context, tx pgx.Tx, ds []delivery) error

// newBatcher returns the batcher of a handler that writes effects once per
// message: each batch is one inbox.ProcessSet transaction whose effects
// effects writes, up to batchWriters of them at once. process reports done
// == false for a message the inbox had already seen.
func newBatcher(handler string, db inbox.Beginner, effects effectSet, cfg Config, m *handlerMetrics) *batcher {
	apply := func(ctx context.Context, ds []delivery) ([]inbox.Outcome, error) {
		ids := deliveryIDs(ds)
		return inbox.ProcessSet(ctx, db, handler, ids, func(ctx context.Context, tx pgx.Tx, indexes []int) error {
			set := make([]delivery, len(indexes))
			for k, i := range indexes {
				set[k] = ds[i]
			}
			return effects(ctx, tx, set)
		})
	}
	b := newCollector(handler, apply, batchWriters, cfg)
	b.sizes = m.batchSize.WithLabelValues(handler)
	return b
}

// newLookups returns a batcher that looks up in batches whether handler's
// inbox has seen the messages (inbox.SeenSet), one lookup at a time: its
// process reports done == true for a message seen.
func newLookups(handler string, db inbox.DB, cfg Config) *batcher {
	return newCollector(handler, func(ctx context.Context, ds []delivery) ([]inbox.Outcome, error) {
		ids := deliveryIDs(ds)
		seen, err := inbox.SeenSet(ctx, db, handler, ids)
		if err != nil {
			return nil, err
		}
		outcomes := make([]inbox.Outcome, len(ds))
		for i, d := range ds {
			outcomes[i] = inbox.Outcome{ID: d.id, Done: seen[i]}
		}
		return outcomes, nil
	}, 1, cfg)
}

// newRecords returns a batcher that records the messages in handler's
// inbox in batches (inbox.RecordSet), one batch at a time, for effects
// done outside the database: its process reports done == true.
func newRecords(handler string, db inbox.DB, cfg Config, m *handlerMetrics) *batcher {
	b := newCollector(handler, func(ctx context.Context, ds []delivery) ([]inbox.Outcome, error) {
		ids := deliveryIDs(ds)
		if err := inbox.RecordSet(ctx, db, handler, ids); err != nil {
			return nil, err
		}
		outcomes := make([]inbox.Outcome, len(ds))
		for i, id := range ids {
			outcomes[i] = inbox.Outcome{ID: id, Done: true}
		}
		return outcomes, nil
	}, 1, cfg)
	b.sizes = m.batchSize.WithLabelValues(handler)
	return b
}

// deliveryIDs are the message ids of ds.
func deliveryIDs(ds []delivery) []uuid.UUID {
	ids := make([]uuid.UUID, len(ds))
	for i, d := range ds {
		ids[i] = d.id
	}
	return ids
}
