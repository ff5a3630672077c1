// Package outbox writes messages into a transactional outbox table inside the
// caller's pgx transaction.
//
// Publishing to a broker right after COMMIT loses the message when the process
// dies between the two steps; publishing before COMMIT announces changes that
// may still roll back. Writing the message into the same transaction as the
// change it announces makes both atomic: the message exists if and only if
// the change committed. A relay (package relay) then publishes committed rows
// to a broker and removes them.
//
// Usage:
//
//	tx, err := pool.Begin(ctx)
//	...
//	_, err = tx.Exec(ctx, "INSERT INTO orders ...")
//	err = outbox.EnqueueTx(ctx, tx, outbox.Message{
//		Topic:   "order.placed",
//		Key:     orderID,
//		Payload: payload,
//	})
//	err = tx.Commit(ctx) // the message becomes visible to relays now
//
// EnqueueBatch queues the same write on the caller's pgx.Batch instead, so
// the message travels with the business change in one round trip; a batch
// sent outside a transaction commits as one implicit transaction.
//
// The package knows nothing about what the messages say. It needs the
// outbox table, which package schema creates with the library's other
// tables (schema.Migrate, or the goose CLI on outbox/schema/migrations) and
// nothing of the service that ships it; see schema's Example_adoptingService
// for a whole service in one page.
package outbox
