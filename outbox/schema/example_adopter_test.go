package schema_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"strings"

	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/outbox/inbox"
	"github.com/outboxd/outboxd/outbox/schema"
	"github.com/outboxd/outboxd/relay"
)

// A service of its own (orders and shipments, no users) adopts the outbox:
// the library's tables beside its own, an order and its event in one
// transaction, a relay publishing to any Watermill publisher, and a consumer
// whose effect happens once however often the broker delivers.
func Example_adoptingService() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDSN)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	// The library's tables, then the service's own migrations.
	if err := schema.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
		CREATE TABLE orders (id text PRIMARY KEY, total_cents int NOT NULL);
		CREATE TABLE shipments (order_id text PRIMARY KEY)`)
	if err != nil {
		log.Fatal(err)
	}

	// Any Watermill publisher: NATS, RabbitMQ, Kafka, SQL, or in-process here.
	pubSub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, nil)
	defer pubSub.Close()
	r, err := relay.New(pool, pubSub, relay.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- r.Run(runCtx) }()

	// The order and its event commit together, or neither does.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO orders VALUES ('order-42', 1999)`); err != nil {
			return err
		}
		return outbox.EnqueueTx(ctx, tx, outbox.Message{
			Topic: "order.placed", Key: "order-42", Payload: []byte(`{"order_id":"order-42"}`),
		})
	})
	if err != nil {
		log.Fatal(err)
	}

	// The consumer: the broker delivers the message twice, it ships once.
	messages, err := pubSub.Subscribe(ctx, "order.placed")
	if err != nil {
		log.Fatal(err)
	}
	msg := <-messages
	for range 2 {
		id := uuid.MustParse(msg.Metadata.Get(outbox.MetadataMessageID))
		done, err := inbox.Process(ctx, pool, "shipping", id, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO shipments VALUES ($1)`, msg.Metadata.Get(outbox.MetadataKey))
			return err
		})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("shipped:", done)
	}
	msg.Ack()
	stop()
	if err := <-relayDone; err != nil {
		log.Fatal(err)
	}

	// Nothing of outboxd's own service (users, profiles, ...) was created.
	rows, _ := pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Join(tables, " "))
	// Output:
	// shipped: true
	// shipped: false
	// inbox orders outbox outbox_dead_letters outbox_goose_db_version relay_leader relay_slot shipments
}

// Apply the library's migrations at start-up, before the service's own.
func ExampleMigrate() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDSN)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := schema.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	var version int64
	err = pool.QueryRow(ctx, `SELECT max(version_id) FROM `+schema.VersionTable).Scan(&version)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("outbox schema version", version)
	// Output: outbox schema version 7
}
