package relay_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/relay"
)

// Relay messages committed in the outbox to a Watermill Pub/Sub. Here the
// broker is Watermill's in-process gochannel; in production it is NATS,
// RabbitMQ, Kafka, ... and the relay runs as a sidecar.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDSN)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	pubSub := gochannel.NewGoChannel(gochannel.Config{}, nil)
	defer pubSub.Close()
	messages, err := pubSub.Subscribe(ctx, "order.placed")
	if err != nil {
		log.Fatal(err)
	}

	r, err := relay.New(pool, pubSub, relay.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()

	// The application's transaction writes its change and the message
	// together; the relay is woken when it commits.
	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// ... INSERT INTO orders ...
	err = outbox.EnqueueTx(ctx, tx, outbox.Message{
		Topic:   "order.placed",
		Key:     "order-42",
		Payload: []byte(`{"order_id":"order-42"}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}

	msg := <-messages
	msg.Ack()
	fmt.Println(string(msg.Payload), msg.Metadata.Get(outbox.MetadataKey))

	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output: {"order_id":"order-42"} order-42
}
