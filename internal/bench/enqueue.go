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
// outbox adds to the caller's transaction, with the NOTIFY that wakes a
// polling relay and without it (a relay streaming the WAL needs none).
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
			"Writer{WithoutNotify: true} is the library's path for writers that feed a relay in wal; its statement is the row-only variant's plain INSERT, so a gap between the two is the run's noise",
			"target (issue 11): the library without NOTIFY costs no more than the row-only variant of the same run; aim ≤ +10 %",
			"pg_logical_emit_message(true, 'outbox', payload) writes the event to the WAL only, as a variant and not an outbox: no heap row, no identity or index entry, no jsonb, no later delete or vacuum; it is the floor of any WAL-based outbox",
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
		// overhead is variant v's against the user insert alone of its kind.
		overhead := func(v int) float64 {
			alone := r[batchAlone]
			if v < batchAlone {
				alone = r[txAlone]
			}
			return (alone/r[v] - 1) * 100
		}
		silent := Row{Figure: fmt.Sprintf("Writer{WithoutNotify: true}.EnqueueBatch overhead, one batch (writers of a relay in wal), %d in flight", workers),
			Unit: "%", Ours: overhead(batchSilent)}
		silent.Goal = goal(silent.Ours <= overhead(batchRowOnly), "≤ row-only %.1f %% (aim ≤ 10 %%)", overhead(batchRowOnly))
		t.Rows = append(t.Rows,
			Row{Figure: fmt.Sprintf("tx/s, one batch: user + EnqueueBatch (NOTIFY) vs user alone, %d in flight", workers), Unit: "tx/s", Ours: r[batchEnqueue], Baseline: r[batchAlone]},
			Row{Figure: fmt.Sprintf("tx/s, one batch: user + Writer{WithoutNotify: true}.EnqueueBatch vs user alone, %d in flight", workers), Unit: "tx/s", Ours: r[batchSilent], Baseline: r[batchAlone]},
			Row{Figure: fmt.Sprintf("EnqueueBatch overhead, one batch (the signup path, NOTIFY), %d in flight", workers), Unit: "%", Ours: overhead(batchEnqueue)},
			silent,
			Row{Figure: fmt.Sprintf("outbox row without NOTIFY overhead, one batch (the row-only variant, raw SQL), %d in flight", workers), Unit: "%", Ours: overhead(batchRowOnly)},
			Row{Figure: fmt.Sprintf("pg_logical_emit_message instead of a row overhead, one batch (the floor of a WAL outbox), %d in flight", workers), Unit: "%", Ours: overhead(batchEmit)},
			Row{Figure: fmt.Sprintf("tx/s, BEGIN…COMMIT: user + Enqueue vs user alone, %d in flight", workers), Unit: "tx/s", Ours: r[txEnqueue], Baseline: r[txAlone]},
			Row{Figure: fmt.Sprintf("Enqueue overhead, BEGIN…COMMIT, %d in flight", workers), Unit: "%", Ours: overhead(txEnqueue)},
			Row{Figure: fmt.Sprintf("naive extra INSERT (no NOTIFY) overhead, BEGIN…COMMIT, %d in flight", workers), Unit: "%", Ours: overhead(txNaive)},
		)
	}
	return []Table{t}, nil
}

// The enqueue variants, indexes of enqueueVariants and of enqueueRates'
// result; each overhead is against the "alone" variant of its kind.
const (
	txAlone = iota
	txEnqueue
	txNaive
	batchAlone
	batchEnqueue
	batchSilent
	batchRowOnly
	batchEmit
	enqueueVariantCount
)

// enqueueRates measures every variant with workers transactions in flight
// and returns their rates in tx/s, by variant.
func (e *env) enqueueRates(ctx context.Context, workers int) ([enqueueVariantCount]float64, error) {
	var rates [enqueueVariantCount]float64
	variants := e.enqueueVariants()
	perRound := make([][]float64, len(variants))
	for round := range enqueueRounds {
		for v, variant := range variants {
			label := fmt.Sprintf("enqueue %d in flight, round %d/%d: %s", workers, round+1, enqueueRounds, variant.name)
			res, err := e.measure(ctx, label, workers, variant.op)
			if err != nil {
				return rates, err
			}
			perRound[v] = append(perRound[v], res.rate())
		}
	}
	for v, rs := range perRound {
		slices.Sort(rs)
		rates[v] = rs[len(rs)/2]
	}
	return rates, nil
}

type enqueueVariant struct {
	name string
	op   func(ctx context.Context, w, i int) error
}

// enqueueVariants are the variants by their index: BEGIN…COMMIT alone, with
// Enqueue, with a naive insert; one batch alone, with EnqueueBatch, with
// Writer{WithoutNotify: true}.EnqueueBatch, with a plain insert, with
// pg_logical_emit_message instead of a row.
func (e *env) enqueueVariants() [enqueueVariantCount]enqueueVariant {
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
	return [enqueueVariantCount]enqueueVariant{
		txAlone: {"BEGIN…COMMIT, user insert alone", func(ctx context.Context, w, i int) error {
			return txOp(ctx, e.pool, func(tx pgx.Tx) error {
				_, _, _, err := insertUser(ctx, tx, w, i)
				return err
			})
		}},
		txEnqueue: {"BEGIN…COMMIT, user insert + outbox.Enqueue", func(ctx context.Context, w, i int) error {
			return txOp(ctx, e.pool, func(tx pgx.Tx) error {
				id, email, at, err := insertUser(ctx, tx, w, i)
				if err != nil {
					return err
				}
				return outbox.EnqueueTx(ctx, tx, userCreated(id, email, at))
			})
		}},
		txNaive: {"BEGIN…COMMIT, user insert + naive INSERT INTO outbox", func(ctx context.Context, w, i int) error {
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
		batchAlone: {"one batch, user insert alone", batch(func(*pgx.Batch, outbox.Message) error { return nil })},
		batchEnqueue: {"one batch, user insert + outbox.EnqueueBatch", batch(func(b *pgx.Batch, m outbox.Message) error {
			return outbox.EnqueueBatch(b, m)
		})},
		batchSilent: {"one batch, user insert + outbox.Writer{WithoutNotify: true}.EnqueueBatch", batch(func(b *pgx.Batch, m outbox.Message) error {
			return outbox.Writer{WithoutNotify: true}.EnqueueBatch(b, m)
		})},
		batchRowOnly: {"one batch, user insert + plain outbox INSERT (no NOTIFY)", batch(func(b *pgx.Batch, m outbox.Message) error {
			args, err := plainOutboxArgs(m)
			b.Queue(insertOutboxSQL, args...)
			return err
		})},
		batchEmit: {"one batch, user insert + pg_logical_emit_message (no outbox row)", batch(func(b *pgx.Batch, m outbox.Message) error {
			b.Queue(emitMessageSQL, m.Payload)
			return nil
		})},
	}
}

// emitMessageSQL writes an event to the WAL alone, transactionally: what a
// WAL-based outbox without a table would write.
const emitMessageSQL = `SELECT pg_logical_emit_message(true, 'outbox', $1::bytea)`

// insertOutboxSQL is a plain outbox insert, without NOTIFY.
const insertOutboxSQL = `INSERT INTO outbox (message_id, topic, key, payload, metadata) VALUES ($1, $2, $3, $4, $5)`

// plainOutboxArgs are the arguments of insertOutboxSQL for m.
func plainOutboxArgs(m outbox.Message) ([]any, error) {
	md, err := json.Marshal(m.Metadata)
	return []any{uuid.New(), m.Topic, m.Key, m.Payload, md}, err
}
