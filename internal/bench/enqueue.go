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

// enqueueBatchSQL is a prototype of a proposed outbox.EnqueueBatch: the
// outbox insert queued on the caller's pgx.Batch behind the user insert, so
// both travel in one round trip.
const enqueueBatchSQL = `
WITH inserted AS (
	INSERT INTO outbox (message_id, topic, key, payload, metadata) VALUES ($1, $2, $3, $4, $5) RETURNING 1
)
SELECT pg_notify('` + outbox.NotifyChannel + `', '') FROM (SELECT count(*) FROM inserted) AS n`

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
			"a transaction is BEGIN, the inserts and COMMIT, each a round trip; Enqueue adds one round trip and a NOTIFY to the insert alone",
			"NOTIFY takes a cluster-wide lock at commit, so notifying transactions commit one at a time; the variants without it show its share",
		},
	}
	counts := []int{1, 8}
	if e.cfg.Concurrency > 0 {
		counts = []int{e.cfg.Concurrency}
	}
	for _, workers := range counts {
		rates, err := e.enqueueRates(ctx, workers)
		if err != nil {
			return nil, err
		}
		alone := rates[0]
		overhead := func(r float64) float64 { return (alone/r - 1) * 100 }
		t.Rows = append(t.Rows,
			Row{Figure: fmt.Sprintf("tx/s, Enqueue vs insert alone, %d in flight", workers), Unit: "tx/s", Ours: rates[1], Baseline: alone},
			Row{Figure: fmt.Sprintf("Enqueue overhead, %d in flight", workers), Unit: "%", Ours: overhead(rates[1])},
			Row{Figure: fmt.Sprintf("naive extra INSERT (no NOTIFY) overhead, %d in flight", workers), Unit: "%", Ours: overhead(rates[2])},
			Row{Figure: fmt.Sprintf("one round trip with NOTIFY (proposed EnqueueBatch) overhead, %d in flight", workers), Unit: "%", Ours: overhead(rates[3])},
			Row{Figure: fmt.Sprintf("one round trip without NOTIFY overhead, %d in flight", workers), Unit: "%", Ours: overhead(rates[4])},
		)
	}
	return []Table{t}, nil
}

// enqueueRates returns the rate of each enqueue variant with workers
// transactions in flight: alone, Enqueue, naive insert, batch with NOTIFY,
// batch without.
func (e *env) enqueueRates(ctx context.Context, workers int) ([]float64, error) {
	variants := e.enqueueVariants()
	perRound := make([][]float64, len(variants))
	for round := range enqueueRounds {
		for v, variant := range variants {
			label := fmt.Sprintf("enqueue %d in flight, round %d/%d: %s", workers, round+1, enqueueRounds, variant.name)
			res, err := e.measure(ctx, label, workers, variant.op)
			if err != nil {
				return nil, err
			}
			perRound[v] = append(perRound[v], res.rate())
		}
	}
	rates := make([]float64, len(variants))
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

func (e *env) enqueueVariants() []enqueueVariant {
	insertUser := func(ctx context.Context, tx pgx.Tx, w, i int) (uuid.UUID, string, time.Time, error) {
		id, email := newUser(w, i)
		var createdAt time.Time
		err := tx.QueryRow(ctx, insertUserSQL, id, email, "Bench User", fakeHash).Scan(&createdAt)
		if err != nil {
			return id, email, createdAt, fmt.Errorf("insert user: %w", err)
		}
		return id, email, createdAt, nil
	}
	batch := func(outboxSQL string) func(ctx context.Context, w, i int) error {
		return func(ctx context.Context, w, i int) error {
			return txOp(ctx, e.pool, func(tx pgx.Tx) error {
				id, email := newUser(w, i)
				m := userCreated(id, email, time.Now().UTC())
				md, _ := json.Marshal(m.Metadata)
				b := &pgx.Batch{}
				b.Queue(insertUserSQL, id, email, "Bench User", fakeHash)
				b.Queue(outboxSQL, uuid.New(), m.Topic, m.Key, m.Payload, md)
				if err := tx.SendBatch(ctx, b).Close(); err != nil {
					return fmt.Errorf("insert user and outbox row: %w", err)
				}
				return nil
			})
		}
	}
	return []enqueueVariant{
		{"user insert alone", func(ctx context.Context, w, i int) error {
			return txOp(ctx, e.pool, func(tx pgx.Tx) error {
				_, _, _, err := insertUser(ctx, tx, w, i)
				return err
			})
		}},
		{"user insert + outbox.Enqueue", func(ctx context.Context, w, i int) error {
			return txOp(ctx, e.pool, func(tx pgx.Tx) error {
				id, email, at, err := insertUser(ctx, tx, w, i)
				if err != nil {
					return err
				}
				return outbox.Enqueue(ctx, tx, userCreated(id, email, at))
			})
		}},
		{"user insert + naive INSERT INTO outbox", func(ctx context.Context, w, i int) error {
			return txOp(ctx, e.pool, func(tx pgx.Tx) error {
				id, email, at, err := insertUser(ctx, tx, w, i)
				if err != nil {
					return err
				}
				m := userCreated(id, email, at)
				md, _ := json.Marshal(m.Metadata)
				_, err = tx.Exec(ctx, insertOutboxSQL, uuid.New(), m.Topic, m.Key, m.Payload, md)
				return err
			})
		}},
		{"both inserts in one round trip, with NOTIFY", batch(enqueueBatchSQL)},
		{"both inserts in one round trip, without NOTIFY", batch(insertOutboxSQL)},
	}
}

// insertOutboxSQL is a plain outbox insert, without NOTIFY.
const insertOutboxSQL = `INSERT INTO outbox (message_id, topic, key, payload, metadata) VALUES ($1, $2, $3, $4, $5)`
