package relay

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/outboxd/outboxd/outbox"
)

// DB runs statements: *pgxpool.Pool, *pgx.Conn and pgx.Tx all satisfy it,
// so the dead-letter functions also work inside a caller's transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// DeadLetter is a message the broker rejected MaxAttempts times, kept in
// outbox_dead_letters until it is replayed or purged.
type DeadLetter struct {
	// ID is the id the message had in the outbox.
	ID int64
	// MessageID is the message's UUID, kept when it is replayed.
	MessageID uuid.UUID
	// Topic is where the message was to be published.
	Topic string
	// Key is the message's ordering key.
	Key string
	// Payload is the message body.
	Payload []byte
	// Metadata is the metadata written with the message.
	Metadata map[string]string
	// CreatedAt is when the message was enqueued.
	CreatedAt time.Time
	// Attempts is the number of times the broker rejected it.
	Attempts int
	// LastError is the broker's last rejection.
	LastError string
	// FailedAt is when the message was dead-lettered.
	FailedAt time.Time
}

// ListDeadLettersLimitDefault is the default page size of ListDeadLetters.
const ListDeadLettersLimitDefault = 100

// ListDeadLettersParams selects a page of dead letters.
type ListDeadLettersParams struct {
	// DeadLetterFilter narrows the list. Defaults to every dead letter.
	DeadLetterFilter
	// AfterID lists dead letters with a greater ID, to page through them
	// oldest first. Defaults to 0 (from the first).
	AfterID int64
	// NewestFirst lists the latest failures first, ordered by (FailedAt, ID)
	// descending, and pages with Before instead of AfterID. Defaults to
	// false (ID order).
	NewestFirst bool
	// Before, with NewestFirst, lists the dead letters that come after this
	// position: failed earlier, or at the same time with a lower ID.
	// Defaults to the zero position (from the newest).
	Before DeadLetterPosition
	// Limit is the most dead letters returned. Defaults to
	// ListDeadLettersLimitDefault (100).
	Limit int
}

// ListDeadLetters returns the dead letters params selects, in ID order or,
// with NewestFirst, latest failure first. Both page by keyset, so a page
// costs the same at any depth.
func ListDeadLetters(ctx context.Context, db DB, params ListDeadLettersParams) ([]DeadLetter, error) {
	if params.Limit < 0 {
		return nil, fmt.Errorf("list dead letters: Limit must not be negative")
	}
	var c conditions
	params.DeadLetterFilter.add(&c)
	order := "id"
	if params.NewestFirst {
		order = "failed_at DESC, id DESC"
		if before := params.Before; !before.FailedAt.IsZero() {
			at, id := c.arg(before.FailedAt), c.arg(before.ID)
			// The first term lets the failed_at index bound the scan.
			c.add("failed_at <= " + at + " AND (failed_at, id) < (" + at + ", " + id + ")")
		}
	} else {
		c.add("id > " + c.arg(params.AfterID))
	}
	limit := c.arg(cmp.Or(params.Limit, ListDeadLettersLimitDefault))
	rows, err := db.Query(ctx, `
SELECT id, message_id, topic, key, payload, metadata, created_at, attempts, last_error, failed_at
FROM outbox_dead_letters`+c.where()+`
ORDER BY `+order+`
LIMIT `+limit, c.args...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	letters, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		err := r.Scan(&d.ID, &d.MessageID, &d.Topic, &d.Key, &d.Payload, &d.Metadata,
			&d.CreatedAt, &d.Attempts, &d.LastError, &d.FailedAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return letters, nil
}

// replaySQL moves dead letters back into the outbox in one statement, in
// their original order, with their message id (consumers that saw an
// earlier attempt deduplicate it), metadata and enqueue time, and a fresh
// count of attempts. They get new outbox ids, after every row already there,
// and relays are woken.
const replaySQL = `
WITH moved AS (
	DELETE FROM outbox_dead_letters WHERE id = ANY($1::bigint[])
	RETURNING id, message_id, topic, key, payload, metadata, created_at
), inserted AS (
	INSERT INTO outbox (message_id, topic, key, payload, metadata, created_at)
	SELECT message_id, topic, key, payload, metadata, created_at FROM moved ORDER BY id
	RETURNING 1
)
SELECT count(*), pg_notify('` + outbox.NotifyChannel + `', '') FROM inserted`

// Replay moves the dead letters with the given ids back into the outbox to be
// published again, and returns how many it moved; unknown ids are skipped.
// With no ids it does nothing.
func Replay(ctx context.Context, db DB, ids ...int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	rows, err := db.Query(ctx, replaySQL, ids)
	if err != nil {
		return 0, fmt.Errorf("replay dead letters: %w", err)
	}
	n, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (int64, error) {
		var n int64
		var notified any
		err := r.Scan(&n, &notified)
		return n, err
	})
	if err != nil {
		return 0, fmt.Errorf("replay dead letters: %w", err)
	}
	return n, nil
}

// PurgeDeadLetters deletes the dead letters with the given ids for good and
// returns how many it deleted. With no ids it does nothing.
func PurgeDeadLetters(ctx context.Context, db DB, ids ...int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := db.Exec(ctx, `DELETE FROM outbox_dead_letters WHERE id = ANY($1::bigint[])`, ids)
	if err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	return tag.RowsAffected(), nil
}

// PurgeAllDeadLetters deletes every dead letter for good and returns how
// many it deleted.
func PurgeAllDeadLetters(ctx context.Context, db DB) (int64, error) {
	tag, err := db.Exec(ctx, `DELETE FROM outbox_dead_letters`)
	if err != nil {
		return 0, fmt.Errorf("purge all dead letters: %w", err)
	}
	return tag.RowsAffected(), nil
}
