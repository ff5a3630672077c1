package deadletter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB runs statements: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// DeadLetter is a message a handler failed to process, even after retries.
type DeadLetter struct {
	// ID identifies the dead letter for Replay and Purge.
	ID int64
	// Handler is the handler that gave up, such as "email".
	Handler string
	// MessageID is the message's id; Replay keeps it.
	MessageID uuid.UUID
	// Topic is the topic the message came from.
	Topic string
	// Payload is the message body as it arrived.
	Payload []byte
	// Metadata is the message's metadata as it arrived.
	Metadata map[string]string
	// Error is the last attempt's error.
	Error string
	// Attempts is how many times the handler tried.
	Attempts int
	// FailedAt is when the handler gave up.
	FailedAt time.Time
}

// ErrNotFound is returned by Replay for an id that is not a dead letter
// (never was, or was already replayed or purged).
var ErrNotFound = errors.New("dead letter not found")

// maxErrorLen bounds the stored error: a panic's stack trace is useful in
// the log, not in every listing.
const maxErrorLen = 4096

// addSQL stores a dead letter. A message dead-lettered again by the same
// handler (the broker redelivered it before the first ack got through)
// updates the existing row instead of adding a second one.
const addSQL = `
INSERT INTO dead_letters (handler, message_id, topic, payload, metadata, error, attempts)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (handler, message_id) DO UPDATE
SET error = excluded.error,
    attempts = dead_letters.attempts + excluded.attempts,
    failed_at = now()
RETURNING id`

// Add stores d (its ID and FailedAt are ignored) and returns its id. Adding
// the same handler and message again updates the stored error and adds to
// its attempts.
func Add(ctx context.Context, db DB, d DeadLetter) (int64, error) {
	switch {
	case d.Handler == "":
		return 0, errors.New("add dead letter: Handler is empty")
	case d.MessageID == uuid.Nil:
		return 0, errors.New("add dead letter: MessageID is the zero UUID")
	}
	payload := d.Payload
	if payload == nil {
		payload = []byte{}
	}
	metadata := d.Metadata
	if metadata == nil {
		metadata = map[string]string{}
	}
	var id int64
	err := db.QueryRow(ctx, addSQL,
		d.Handler, d.MessageID, d.Topic, payload, metadata, truncate(d.Error, maxErrorLen), max(d.Attempts, 1),
	).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("add dead letter %s/%s: %w", d.Handler, d.MessageID, err)
	}
	return id, nil
}

// ListLimitDefault is the default Filter.Limit.
const ListLimitDefault = 100

// Filter selects dead letters for List, Count and PurgeMatching.
type Filter struct {
	// Handler keeps only this handler's dead letters. Defaults to "" (every
	// handler).
	Handler string
	// MessageID keeps only this message's dead letters. Defaults to the zero
	// UUID (every message).
	MessageID uuid.UUID
	// Topic keeps only the dead letters of this topic. Defaults to "" (every
	// topic).
	Topic string
	// Since keeps only dead letters that failed at or after it. Defaults to
	// the zero time (no lower bound).
	Since time.Time
	// Until keeps only dead letters that failed before it. Defaults to the
	// zero time (no upper bound).
	Until time.Time
	// AfterID lists dead letters with a greater ID, to page through them
	// oldest first. Defaults to 0 (from the first). Count and PurgeMatching
	// ignore it.
	AfterID int64
	// NewestFirst lists the latest failures first, ordered by (FailedAt, ID)
	// descending, and pages with Before instead of AfterID. Defaults to
	// false (by ID, oldest first).
	NewestFirst bool
	// Before, with NewestFirst, lists the dead letters that come after this
	// position: those that failed earlier, or at the same time with a lower
	// ID. Defaults to the zero Position (from the newest). Count and
	// PurgeMatching ignore it.
	Before Position
	// Limit is the most dead letters List returns. Defaults to
	// ListLimitDefault.
	Limit int
}

// List returns the dead letters f selects, oldest (lowest ID) first, or
// latest failure first with f.NewestFirst. Both orders page by keyset, so a
// page costs the same at any depth.
func List(ctx context.Context, db DB, f Filter) ([]DeadLetter, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("list dead letters: Filter.Limit must not be negative, got %d", f.Limit)
	}
	var w where
	f.match(&w)
	order := "id"
	if f.NewestFirst {
		order = "failed_at DESC, id DESC"
		if !f.Before.FailedAt.IsZero() {
			at, id := w.arg(f.Before.FailedAt), w.arg(f.Before.ID)
			// The first term lets the failed_at index bound the scan.
			w.add("failed_at <= " + at + " AND (failed_at, id) < (" + at + ", " + id + ")")
		}
	} else {
		w.add("id > " + w.arg(f.AfterID))
	}
	limit := w.arg(cmp.Or(f.Limit, ListLimitDefault))
	rows, err := db.Query(ctx, `
SELECT id, handler, message_id, topic, payload, metadata, error, attempts, failed_at
FROM dead_letters`+w.sql()+`
ORDER BY `+order+`
LIMIT `+limit, w.args...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	letters, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		err := r.Scan(&d.ID, &d.Handler, &d.MessageID, &d.Topic, &d.Payload, &d.Metadata,
			&d.Error, &d.Attempts, &d.FailedAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return letters, nil
}

// Purge deletes the dead letters with the given ids for good and returns how
// many it deleted; unknown ids are skipped. With no ids it does nothing.
func Purge(ctx context.Context, db DB, ids ...int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := db.Exec(ctx, `DELETE FROM dead_letters WHERE id = ANY($1::bigint[])`, ids)
	if err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	return tag.RowsAffected(), nil
}

// PurgeAll deletes every dead letter of handler, or every dead letter at all
// when handler is "", and returns how many it deleted.
func PurgeAll(ctx context.Context, db DB, handler string) (int64, error) {
	tag, err := db.Exec(ctx, `DELETE FROM dead_letters WHERE $1::text = '' OR handler = $1`, handler)
	if err != nil {
		return 0, fmt.Errorf("purge all dead letters: %w", err)
	}
	return tag.RowsAffected(), nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
