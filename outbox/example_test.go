package outbox_test

import (
	"context"
	"fmt"
	"log"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/pgtest"
	"github.com/outboxd/outboxd/outbox"
)

// exampleDSN is a migrated database shared by the examples.
var exampleDSN string

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.WithDatabase(&exampleDSN))
}

// Enqueue a message in the same transaction as the change it announces.
func ExampleEnqueueTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDSN)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	// ... the business change, e.g. INSERT INTO orders, goes here ...
	err = outbox.EnqueueTx(ctx, tx, outbox.Message{
		Topic:    "order.placed",
		Key:      "order-42",
		Payload:  []byte(`{"order_id":"order-42"}`),
		Metadata: map[string]string{outbox.MetadataCorrelationID: "req-1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}

	var topic, key string
	err = pool.QueryRow(ctx, `SELECT topic, key FROM outbox WHERE key = 'order-42'`).Scan(&topic, &key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(topic, key)
	// Output: order.placed order-42
}

// Queue a message behind the business change on one pgx.Batch: sent outside
// a transaction, the batch is one implicit transaction and one round trip.
func ExampleEnqueueBatch() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDSN)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	b := &pgx.Batch{}
	b.Queue(`INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)`,
		"0190a4c8-0000-7000-8000-000000000001", "ada@example.com", "Ada", "argon2id-hash")
	err = outbox.EnqueueBatch(b, outbox.Message{
		Topic:   "user.created",
		Key:     "0190a4c8-0000-7000-8000-000000000001",
		Payload: []byte(`{"user_id":"0190a4c8-0000-7000-8000-000000000001"}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	// Both rows commit together, or neither does.
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		log.Fatal(err)
	}

	var topic string
	err = pool.QueryRow(ctx, `SELECT topic FROM outbox WHERE key = '0190a4c8-0000-7000-8000-000000000001'`).Scan(&topic)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(topic)
	// Output: user.created
}
