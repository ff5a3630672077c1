package relay

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// row is one claimed outbox row.
type row struct {
	id        int64
	messageID uuid.UUID
	topic     string
	key       string
	payload   []byte
	metadata  []byte
	createdAt time.Time
	attempts  int
	// xid is the writing transaction's id, known for streamed rows only.
	xid uint64
}

// horizonSQL is the xid below which every transaction of this database has
// ended: the current snapshot's oldest transaction still in progress, but
// skipping those that pg_stat_activity shows in other databases, which
// cannot write this outbox. xids are cluster-wide, so without the skip a
// long write elsewhere in the cluster (CREATE DATABASE, a batch job) would
// hold publishing back. pg_stat_activity is read after the snapshot is
// taken, and a transaction it does not show (ended since, or hidden from an
// unprivileged role) counts as this database's: the horizon can only come
// out too low, delaying a row, never too high.
const horizonSQL = `(
	SELECT coalesce(
		(SELECT min(x) FROM pg_snapshot_xip(s.snap) AS x
		 WHERE NOT EXISTS (
			SELECT 1 FROM pg_stat_activity a
			WHERE a.backend_xid = xid(x)
				AND a.datid IS DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database())
		 )),
		pg_snapshot_xmax(s.snap))
	FROM (SELECT pg_current_snapshot() AS snap) AS s
)`

// claimSQL selects the next rows to publish, in id order. A row is eligible
// once every transaction that got its xid before its own has ended (its xid
// is below the horizon), so no row of a lower id can still commit after it
// is published. A row waiting to be retried after a permanent failure holds
// back the later rows of its key, so they cannot overtake it. The rows of
// the batch being published are left out, and so are the ids below $4, the
// claim floor (see claimFloor), where no row needs publishing any more.
//
// The horizon is an InitPlan, computed once per statement. No row lock is
// taken: only the leader claims, and a leader that lost its lock mid-batch at
// worst publishes a message twice.
const claimSQL = `
WITH held AS MATERIALIZED (
	SELECT key, min(id) AS id
	FROM outbox
	WHERE attempts > 0 AND published_at IS NULL AND next_attempt_at > now()
	GROUP BY key
)
SELECT o.id, o.message_id, o.topic, o.key, o.payload, o.metadata, o.created_at, o.attempts
FROM outbox o
WHERE o.published_at IS NULL
	AND o.next_attempt_at <= now()
	AND ` + committedSQL + `
	AND NOT EXISTS (SELECT 1 FROM held h WHERE h.key = o.key AND h.id < o.id)
	AND o.id <> ALL($2::bigint[])
	AND o.id >= $4
ORDER BY o.id
LIMIT $1`

// committedSQL is claimSQL's test of a row's transaction: under the
// horizon when polling; visible in the slot's exported snapshot ($3) while
// WAL capture publishes what the table held when its slot was created.
const committedSQL = `CASE WHEN $3::pg_snapshot IS NULL THEN o.xid < ` + horizonSQL + `
		ELSE pg_visible_in_snapshot(o.xid, $3::pg_snapshot) END`

// claim returns up to limit eligible rows of ids from floor up, leaving out
// the ids of exclude (never nil: SQL's <> ALL(NULL) would exclude
// everything): under the horizon, or visible in snapshot when it is not nil.
func claim(ctx context.Context, pool *pgxpool.Pool, limit int, exclude []int64, snapshot *string, floor int64) ([]row, error) {
	rows, err := pool.Query(ctx, claimSQL, limit, exclude, snapshot, floor)
	if err != nil {
		return nil, fmt.Errorf("claim batch: %w", err)
	}
	claimed, err := scanRows(rows, limit)
	if err != nil {
		return nil, fmt.Errorf("claim batch: %w", err)
	}
	return claimed, nil
}

func scanRows(rows pgx.Rows, capacity int) ([]row, error) {
	defer rows.Close()
	out := make([]row, 0, capacity)
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.messageID, &r.topic, &r.key, &r.payload, &r.metadata, &r.createdAt, &r.attempts); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const (
	deletePublishedSQL = `DELETE FROM outbox WHERE id = ANY($1::bigint[])`
	markPublishedSQL   = `UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])`

	// recordFailuresSQL counts a permanent failure against each message and
	// schedules its next attempt.
	recordFailuresSQL = `
UPDATE outbox o
SET attempts = o.attempts + 1,
	last_error = f.error,
	next_attempt_at = now() + f.delay_ms * interval '1 millisecond'
FROM unnest($1::bigint[], $2::text[], $3::float8[]) AS f(id, error, delay_ms)
WHERE o.id = f.id`

	// deadLetterSQL moves the messages out of attempts into the dead-letter
	// table: one statement, so a row is in exactly one of the two tables.
	deadLetterSQL = `
WITH moved AS (
	DELETE FROM outbox
	WHERE id = ANY($1::bigint[]) AND attempts >= $2
	RETURNING id, message_id, topic, key, payload, metadata, created_at, xid,
		attempts, next_attempt_at, last_error, published_at
)
INSERT INTO outbox_dead_letters (id, message_id, topic, key, payload, metadata,
	created_at, xid, attempts, next_attempt_at, last_error, published_at, failed_at)
SELECT id, message_id, topic, key, payload, metadata, created_at, xid,
	attempts, next_attempt_at, coalesce(last_error, ''), published_at, now()
FROM moved
RETURNING id, message_id, topic, key, last_error`
)

// failure is a permanent publish failure of one row.
type failure struct {
	row   *row
	err   error
	delay time.Duration
}

// deadLetter describes a row just moved to outbox_dead_letters, for the log.
type deadLetter struct {
	id        int64
	messageID uuid.UUID
	topic     string
	key       string
	lastError string
}

// settle records the outcome of a batch: the published rows are deleted (or
// marked, with a retention) in one statement; permanent failures, rare, are
// counted and possibly dead-lettered in the same transaction.
func settle(ctx context.Context, pool *pgxpool.Pool, published []int64, failures []failure, retain bool, maxAttempts int) (dead []deadLetter, err error) {
	markSQL := deletePublishedSQL
	if retain {
		markSQL = markPublishedSQL
	}
	if len(failures) == 0 {
		if len(published) == 0 {
			return nil, nil
		}
		if _, err := pool.Exec(ctx, markSQL, published); err != nil {
			return nil, fmt.Errorf("mark %d published messages: %w", len(published), err)
		}
		return nil, nil
	}

	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if len(published) > 0 {
			if _, err := tx.Exec(ctx, markSQL, published); err != nil {
				return fmt.Errorf("mark %d published messages: %w", len(published), err)
			}
		}
		ids := make([]int64, len(failures))
		errs := make([]string, len(failures))
		delays := make([]float64, len(failures))
		for i, f := range failures {
			ids[i] = f.row.id
			errs[i] = errorText(f.err)
			delays[i] = float64(f.delay) / float64(time.Millisecond)
		}
		if _, err := tx.Exec(ctx, recordFailuresSQL, ids, errs, delays); err != nil {
			return fmt.Errorf("record %d failed attempts: %w", len(failures), err)
		}
		rows, err := tx.Query(ctx, deadLetterSQL, ids, maxAttempts)
		if err != nil {
			return fmt.Errorf("dead-letter messages: %w", err)
		}
		dead, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (deadLetter, error) {
			var d deadLetter
			err := r.Scan(&d.id, &d.messageID, &d.topic, &d.key, &d.lastError)
			return d, err
		})
		if err != nil {
			return fmt.Errorf("dead-letter messages: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("settle batch: %w", err)
	}
	return dead, nil
}

// maxErrorLen bounds the error text stored with a message.
const maxErrorLen = 2000

// errorText makes an error message storable in a text column: valid UTF-8,
// no NUL byte, at most maxErrorLen bytes.
func errorText(err error) string {
	s := strings.ToValidUTF8(err.Error(), "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= maxErrorLen {
		return s
	}
	n := maxErrorLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
