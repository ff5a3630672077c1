// Package inbox makes message handlers idempotent: each effect happens once
// per message, however often the broker delivers it.
//
// Brokers deliver at least once: a handler that crashes before its
// acknowledgement sees the message again. The inbox table remembers which
// (handler, message id) pairs are done. When the handler's effect lives in
// the same PostgreSQL database, Process writes the effect and the inbox row in
// one transaction, so either both exist or neither does, and a redelivered
// message is recognised and skipped:
//
//	done, err := inbox.Process(ctx, pool, "profile", msgID, func(ctx context.Context, tx pgx.Tx) error {
//		_, err := tx.Exec(ctx, "INSERT INTO profiles ...")
//		return err
//	})
//	// err != nil: nothing was written; let the broker redeliver.
//	// done == false: a duplicate; acknowledge it.
//
// A consumer that receives many messages at once can apply them with
// ProcessBatch: one statement finds the messages the inbox has not seen, and
// one transaction writes their effects and inbox rows. Each effect runs in a
// savepoint, so a failing message is reported alone in its Outcome and the
// others commit; send the failed one through the usual retries. A handler
// whose effects fit one statement for the whole batch (INSERT … SELECT …
// FROM unnest, CopyFrom) uses ProcessSet instead: a batch then costs the
// database a few statements rather than one per message, and a failing
// statement is isolated by running it again for each message alone.
//
// Effects outside the database (an email, a call to another service) cannot
// share the transaction. Check Seen before the effect and Record after it
// (SeenSet and RecordSet do the same for many messages in one statement):
// a crash between the two repeats the effect, so make it recognisable on the
// other side (for an email, a Message-ID derived from the message id).
//
// The package needs the inbox table and its prune_inbox function, which
// package schema creates (schema.Migrate), and knows nothing about what the
// messages say.
package inbox
