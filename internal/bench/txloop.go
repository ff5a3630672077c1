package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/event"
	"github.com/outboxd/outboxd/outbox"
)

// fakeHash is shaped like an argon2id hash of DefaultParams, so rows have
// the size of real ones without paying for hashing.
const fakeHash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0123456789abcdef0123456789abcdef0123456789abcdef0123"

// insertUserSQL is the signup's user insert (internal/signup).
const insertUserSQL = `INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)`

// rawEnqueueSQL is the statement outbox.EnqueueBatch queues for one message,
// written out: the insert and the NOTIFY that wakes relays.
const rawEnqueueSQL = `
WITH inserted AS (
	INSERT INTO outbox (message_id, topic, key, payload, metadata) VALUES ($1, $2, $3, $4, $5) RETURNING 1
)
SELECT pg_notify('` + outbox.NotifyChannel + `', '') FROM (SELECT count(*) FROM inserted) AS n`

// newUser returns the values of a distinct user: an id and a unique email.
func newUser(worker, i int) (uuid.UUID, string) {
	id, _ := uuid.NewV7()
	return id, fmt.Sprintf("bench-%d-%d-%s@example.com", worker, i, id.String()[24:])
}

// userCreated is the outbox message of a new user, as the signup builds it.
func userCreated(id uuid.UUID, email string, createdAt time.Time) outbox.Message {
	payload, _ := json.Marshal(event.UserCreated{UserID: id, Email: email, Name: "Bench User", CreatedAt: createdAt})
	return outbox.Message{
		Topic:   event.TopicUserCreated,
		Key:     id.String(),
		Payload: payload,
		Metadata: map[string]string{
			outbox.MetadataCorrelationID: uuid.NewString(),
			outbox.MetadataTraceparent:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		},
	}
}

// rawSignupTx is the signup transaction as raw SQL, sent the way the
// handler sends it: the user insert and its outbox row (NOTIFY included) in
// one batch, one implicit transaction. It is the ceiling of the signup path.
func rawSignupTx(ctx context.Context, pool *pgxpool.Pool, worker, i int) error {
	id, email := newUser(worker, i)
	createdAt := time.Now().UTC()
	m := userCreated(id, email, createdAt)
	args, err := plainOutboxArgs(m)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(insertUserSQL, id, email, "Bench User", fakeHash, createdAt)
	b.Queue(rawEnqueueSQL, args...)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("insert user and outbox row: %w", err)
	}
	return nil
}

// loopResult is what a closed loop of operations measured.
type loopResult struct {
	n       int64
	elapsed time.Duration
	lat     latencies
}

func (r loopResult) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

// closedLoop runs op from workers goroutines, each starting its next call
// when the last ends, for d, and measures the throughput and latency.
func closedLoop(ctx context.Context, workers int, d time.Duration, count *atomic.Int64, op func(ctx context.Context, worker, i int) error) (loopResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		firstErr error
		n        atomic.Int64
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			var lat []time.Duration
			defer func() {
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			}()
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := op(ctx, w, i); err != nil {
					mu.Lock()
					if firstErr == nil && ctx.Err() == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				lat = append(lat, time.Since(t0))
				n.Add(1)
				if count != nil {
					count.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return loopResult{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return loopResult{}, err
	}
	return loopResult{n: n.Load(), elapsed: time.Since(start), lat: summarize(all)}, nil
}

// txOp runs fn in a transaction of its own on pool.
func txOp(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
