package inbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/outboxd/outboxd/outbox/pgtx"
)

// ErrNoHandler is returned for an empty handler name.
var ErrNoHandler = errors.New("inbox: handler name is empty")

// ErrNoMessageID is returned for the zero message id, which would make every
// message without an id look like a duplicate of the first.
var ErrNoMessageID = errors.New("inbox: message id is the zero UUID")

// DB runs statements: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Beginner starts transactions: a *pgxpool.Pool or a *pgx.Conn.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Process runs fn exactly once per (handler, messageID): it records the
// message in the inbox and runs fn in one transaction, and commits both. If
// handler already processed messageID, Process writes nothing, does not call
// fn and returns done == false with a nil error: acknowledge the duplicate.
//
// If fn or the commit fails, the transaction rolls back, the message is not
// recorded and the error is returned, so a redelivery runs fn again.
// Concurrent deliveries of the same message are safe: the second waits for
// the first transaction and then sees a duplicate (or, if the first rolled
// back, runs fn itself).
func Process(ctx context.Context, db Beginner, handler string, messageID uuid.UUID, fn func(ctx context.Context, tx pgx.Tx) error) (done bool, err error) {
	if err := validate(handler, messageID); err != nil {
		return false, err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("inbox %s: begin: %w", handler, err)
	}
	defer pgtx.Rollback(ctx, tx)
	done, err = ProcessTx(ctx, tx, handler, messageID, fn)
	if err != nil || !done {
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("inbox %s: commit message %s: %w", handler, messageID, err)
	}
	return true, nil
}

// ProcessTx is Process inside the caller's transaction tx: it records
// messageID for handler and calls fn with tx, unless the message is already
// recorded (done == false, fn not called). The record and fn's work become
// visible together when tx commits, and vanish together if it rolls back.
// After an error the caller must roll tx back.
func ProcessTx(ctx context.Context, tx pgx.Tx, handler string, messageID uuid.UUID, fn func(ctx context.Context, tx pgx.Tx) error) (done bool, err error) {
	if err := validate(handler, messageID); err != nil {
		return false, err
	}
	first, err := insert(ctx, tx, handler, messageID)
	if err != nil {
		return false, err
	}
	if !first {
		return false, nil
	}
	if err := fn(ctx, tx); err != nil {
		return false, fmt.Errorf("inbox %s: message %s: %w", handler, messageID, err)
	}
	return true, nil
}

// Seen reports whether handler has recorded messageID, for effects that
// cannot share a transaction with the inbox: check Seen before the effect,
// call Record after it.
func Seen(ctx context.Context, db DB, handler string, messageID uuid.UUID) (bool, error) {
	if err := validate(handler, messageID); err != nil {
		return false, err
	}
	var seen bool
	err := db.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM inbox WHERE handler = $1 AND message_id = $2)`,
		handler, pgUUID(messageID),
	).Scan(&seen)
	if err != nil {
		return false, fmt.Errorf("inbox %s: look up message %s: %w", handler, messageID, err)
	}
	return seen, nil
}

// Record marks messageID as processed by handler. Recording a message twice
// is not an error.
func Record(ctx context.Context, db DB, handler string, messageID uuid.UUID) error {
	if err := validate(handler, messageID); err != nil {
		return err
	}
	_, err := insert(ctx, db, handler, messageID)
	return err
}

// MinPruneAge is the youngest age Prune accepts: rows younger than this
// stay whatever the caller asks.
const MinPruneAge = time.Hour

// Prune deletes the inbox rows recorded more than olderThan ago (at least
// MinPruneAge) and returns how many it deleted. A message redelivered after
// its row is pruned is processed again, so keep rows longer than the broker
// may redeliver a message. It runs the prune_inbox function of package
// schema's migrations, which a consumer's role may be granted EXECUTE on
// without the right to DELETE from inbox.
func Prune(ctx context.Context, db DB, olderThan time.Duration) (int64, error) {
	if olderThan < MinPruneAge {
		return 0, fmt.Errorf("inbox: prune: age %s is below the minimum %s", olderThan, MinPruneAge)
	}
	var n int64
	if err := db.QueryRow(ctx, `SELECT prune_inbox($1)`, olderThan).Scan(&n); err != nil {
		return 0, fmt.Errorf("inbox: prune rows older than %s: %w", olderThan, err)
	}
	return n, nil
}

// insert records the message and reports whether this call did: false means
// another transaction recorded it first. On a conflict with a transaction
// still in flight, PostgreSQL waits for its outcome.
func insert(ctx context.Context, db DB, handler string, messageID uuid.UUID) (bool, error) {
	tag, err := db.Exec(ctx,
		`INSERT INTO inbox (handler, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		handler, pgUUID(messageID),
	)
	if err != nil {
		return false, fmt.Errorf("inbox %s: record message %s: %w", handler, messageID, err)
	}
	return tag.RowsAffected() == 1, nil
}

func validate(handler string, messageID uuid.UUID) error {
	if handler == "" {
		return ErrNoHandler
	}
	if messageID == uuid.Nil {
		return ErrNoMessageID
	}
	return nil
}

// pgUUID is id as pgx encodes it in binary. A uuid.UUID argument goes
// through its driver.Valuer, as text, at several times the cost: on a
// batch's hot path that shows.
func pgUUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// pgUUIDs is pgUUID for each of ids.
func pgUUIDs(ids []uuid.UUID) []pgtype.UUID {
	out := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		out[i] = pgUUID(id)
	}
	return out
}
