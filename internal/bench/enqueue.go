package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/outboxd/outboxd/outbox"
)

// enqueueRounds alternates the variants this many times, so that a drift of
// the shared machine's load hits them alike; the median round counts.
const enqueueRounds = 3

// runEnqueue measures the signup transaction with and without its outbox
// row, one transaction at a time and several at once: the overhead the
// outbox adds to the caller's transaction.
func runEnqueue(ctx context.Context, e *env) ([]Table, error) {
	t := Table{
		Name:     "enqueue",
		Title:    "enqueue: signup transaction with and without its outbox row",
		Baseline: "ceiling",
		Notes: []string{
			fmt.Sprintf("%d rounds of %s per variant, alternated, the median round's rate kept; tables truncated before each", enqueueRounds, e.cfg.Duration),
			"overhead = rate alone / rate with the outbox row − 1: the time the outbox adds to each transaction",
			"one batch = the statements sent as one pgx.Batch outside a transaction: one implicit transaction, one round trip; this is how the signup handler runs (outbox.EnqueueBatch)",
			"BEGIN…COMMIT = pool.Begin, a round trip per statement, Commit; outbox.Enqueue adds one round trip there",
			"NOTIFY takes a cluster-wide lock at commit, so notifying transactions commit one at a time; the variants without it show its share",
		},
	}
	counts := []int{1, 8}
	if e.cfg.Concurrency > 0 {
		counts = []int{e.cfg.Concurrency}
	}
	for _, workers := range counts {
		r, err := e.enqueueRates(ctx, workers)
		if err != nil {
			return nil, err
		}
		overhead := func(alone, with float64) float64 { return (alone/with - 1) * 100 }
		t.Rows = append(t.Rows,
			Row{Figure: fmt.Sprintf("tx/s, one batch: user + EnqueueBatch vs user alone, %d in flight", workers), Unit: "tx/s", Ours: r.batchEnqueue, Baseline: r.batchAlone},
			Row{Figure: fmt.Sprintf("EnqueueBatch overhead, one batch (the signup path), %d in flight", workers), Unit: "%", Ours: overhead(r.batchAlone, r.batchEnqueue)},
			Row{Figure: fmt.Sprintf("outbox row without NOTIFY overhead, one batch, %d in flight", workers), Unit: "%", Ours: overhead(r.batchAlone, r.batchNoNotify)},
			Row{Figure: fmt.Sprintf("tx/s, BEGIN…COMMIT: user + Enqueue vs user alone, %d in flight", workers), Unit: "tx/s", Ours: r.txEnqueue, Baseline: r.txAlone},
			Row{Figure: fmt.Sprintf("Enqueue overhead, BEGIN…COMMIT, %d in flight", workers), Unit: "%", Ours: overhead(r.txAlone, r.txEnqueue)},
			Row{Figure: fmt.Sprintf("naive extra INSERT (no NOTIFY) overhead, BEGIN…COMMIT, %d in flight", workers), Unit: "%", Ours: overhead(r.txAlone, r.txNaive)},
		)
	}
	return []Table{t}, nil
}

// enqueueRates is the rate of each enqueue variant, in tx/s.
type enqueueRates struct {
	txAlone, txEnqueue, txNaive             float64
	batchAlone, batchEnqueue, batchNoNotify float64
}

// enqueueRates measures every variant with workers transactions in flight.
func (e *env) enqueueRates(ctx context.Context, workers int) (enqueueRates, error) {
	variants := e.enqueueVariants()
	perRound := make([][]float64, len(variants))
	for round := range enqueueRounds {
		for v, variant := range variants {
			label := fmt.Sprintf("enqueue %d in flight, round %d/%d: %s", workers, round+1, enqueueRounds, variant.name)
			res, err := e.measure(ctx, label, workers, variant.op)
			if err != nil {
				return enqueueRates{}, err
			}
			perRound[v] = append(perRound[v], res.rate())
		}
	}
	median := func(v int) float64 {
		rs := perRound[v]
		slices.Sort(rs)
		return rs[len(rs)/2]
	}
	return enqueueRates{
		txAlone: median(0), txEnqueue: median(1), txNaive: median(2),
		batchAlone: median(3), batchEnqueue: median(4), batchNoNotify: median(5),
	}, nil
}

type enqueueVariant struct {
	name string
	op   func(ctx context.Context, w, i int) error
}

// enqueueVariants are, in the order of enqueueRates' fields: BEGIN…COMMIT
// alone, with Enqueue, with a naive insert; one batch alone, with
// EnqueueBatch, with a plain insert.
func (e *env) enqueueVariants() []enqueueVariant {
	insertUser := func(ctx context.Context, tx pgx.Tx, w, i int) (uuid.UUID, string, time.Time, error) {
		id, email := newUser(w, i)
		createdAt := time.Now().UTC()
		if _, err := tx.Exec(ctx, insertUserSQL, id, email, "Bench User", fakeHash, createdAt); err != nil {
			return id, email, createdAt, fmt.Errorf("insert user: %w", err)
		}
		return id, email, createdAt, nil
	}
	// batch sends the user insert and what queue adds as one batch.
	batch := func(queue func(b *pgx.Batch, m outbox.Message) error) func(ctx context.Context, w, i int) error {
		return func(ctx context.Context, w, i int) error {
			id, email := newUser(w, i)
			createdAt := time.Now().UTC()
			b := &pgx.Batch{}
			b.Queue(insertUserSQL, id, email, "Bench User", fakeHash, createdAt)
			if err := queue(b, userCreated(id, email, createdAt)); err != nil {
				return err
			}
			if err := e.pool.SendBatch(ctx, b).Close(); err != nil {
				return fmt.Errorf("send batch: %w", err)
			}
			return nil
		}
	}
	return []enqueueVariant{
		{"BEGIN…COMMIT, user insert alone", func(ctx context.Context, w, i int) error {
			return txOp(ctx, e.pool, func(tx pgx.Tx) error {
				_, _, _, err := insertUser(ctx, tx, w, i)
				return err
			})
		}},
		{"BEGIN…COMMIT, user insert + outbox.Enqueue", func(ctx context.Context, w, i int) error {
			return txOp(ctx, e.pool, func(tx pgx.Tx) error {
				id, email, at, err := insertUser(ctx, tx, w, i)
				if err != nil {
					return err
				}
				return outbox.EnqueueTx(ctx, tx, userCreated(id, email, at))
			})
		}},
		{"BEGIN…COMMIT, user insert + naive INSERT INTO outbox", func(ctx context.Context, w, i int) error {
			return txOp(ctx, e.pool, func(tx pgx.Tx) error {
				id, email, at, err := insertUser(ctx, tx, w, i)
				if err != nil {
					return err
				}
				args, _ := plainOutboxArgs(userCreated(id, email, at))
				_, err = tx.Exec(ctx, insertOutboxSQL, args...)
				return err
			})
		}},
		{"one batch, user insert alone", batch(func(*pgx.Batch, outbox.Message) error { return nil })},
		{"one batch, user insert + outbox.EnqueueBatch", batch(func(b *pgx.Batch, m outbox.Message) error {
			return outbox.EnqueueBatch(b, m)
		})},
		{"one batch, user insert + plain outbox INSERT (no NOTIFY)", batch(func(b *pgx.Batch, m outbox.Message) error {
			args, err := plainOutboxArgs(m)
			b.Queue(insertOutboxSQL, args...)
			return err
		})},
	}
}

// insertOutboxSQL is a plain outbox insert, without NOTIFY.
const insertOutboxSQL = `INSERT INTO outbox (message_id, topic, key, payload, metadata) VALUES ($1, $2, $3, $4, $5)`

// plainOutboxArgs are the arguments of insertOutboxSQL for m.
func plainOutboxArgs(m outbox.Message) ([]any, error) {
	md, err := json.Marshal(m.Metadata)
	return []any{uuid.New(), m.Topic, m.Key, m.Payload, md}, err
}
