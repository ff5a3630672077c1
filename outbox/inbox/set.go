package inbox

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// SetEffect writes the effects of several messages of a batch at once, in
// one statement (INSERT … SELECT … FROM unnest(…), CopyFrom) rather than a
// statement each. indexes are the positions, in the batch's ids, of the
// messages to apply: the ones the inbox had not seen, in batch order. It
// must write only with tx; an error undoes everything it wrote.
type SetEffect func(ctx context.Context, tx pgx.Tx, indexes []int) error

// ProcessSet is ProcessBatch for a handler that writes the effects of many
// messages as one set: write is called once for every message the inbox
// has not seen, so that a batch of a hundred messages costs the database
// a few statements, not a hundred.
//
// When write fails, the messages are isolated as ProcessBatch isolates
// them: write is called again for each message alone (indexes of length
// one), each inside a savepoint of its own, in the same transaction; the
// ones that fail alone carry their error in their Outcome and the others
// commit. So write runs twice for some messages when one of them fails, and
// only the last run stays.
//
// ids may repeat: a later copy is a Duplicate (or carries the first copy's
// error). A non-nil error means the batch as a whole failed and nothing was
// written. A batch of one message is Process, without a savepoint.
func ProcessSet(ctx context.Context, db Beginner, handler string, ids []uuid.UUID, write SetEffect) ([]Outcome, error) {
	if handler == "" {
		return nil, ErrNoHandler
	}
	if len(ids) == 1 {
		done, err := Process(ctx, db, handler, ids[0], func(ctx context.Context, tx pgx.Tx) error {
			return write(ctx, tx, []int{0})
		})
		return []Outcome{{ID: ids[0], Done: done, Err: err}}, nil
	}
	return inTx(ctx, db, handler, len(ids), func(tx pgx.Tx) ([]Outcome, error) {
		return ProcessSetTx(ctx, tx, handler, ids, write)
	})
}

// ProcessSetTx is ProcessSet inside the caller's transaction tx: the
// records and effects of the Done messages become visible when tx commits,
// and vanish if it rolls back. After an error the caller must roll tx back.
func ProcessSetTx(ctx context.Context, tx pgx.Tx, handler string, ids []uuid.UUID, write SetEffect) ([]Outcome, error) {
	return processTx(ctx, tx, handler, ids, setEffects(write))
}

// setEffects writes a batch's effects with a SetEffect.
type setEffects SetEffect

func (w setEffects) together(ctx context.Context, sp pgx.Tx, run []int) error {
	return w(ctx, sp, run)
}

func (w setEffects) alone(ctx context.Context, sp pgx.Tx, i int) error {
	return w(ctx, sp, []int{i})
}

// SeenSet is Seen for many messages in one statement: seen[i] reports
// whether handler has recorded ids[i].
func SeenSet(ctx context.Context, db DB, handler string, ids []uuid.UUID) (seen []bool, err error) {
	if handler == "" {
		return nil, ErrNoHandler
	}
	for _, id := range ids {
		if id == uuid.Nil {
			return nil, ErrNoMessageID
		}
	}
	switch len(ids) {
	case 0:
		return nil, nil
	case 1: // Seen's statement, which may keep its plan
		s, err := Seen(ctx, db, handler, ids[0])
		if err != nil {
			return nil, err
		}
		return []bool{s}, nil
	}
	var recorded []pgtype.UUID
	if err := db.QueryRow(ctx,
		`SELECT coalesce(array_agg(message_id), '{}') FROM inbox WHERE handler = $1 AND message_id = ANY($2::uuid[])`,
		planEachTime, handler, pgUUIDs(ids),
	).Scan(&recorded); err != nil {
		return nil, fmt.Errorf("inbox %s: look up %d messages: %w", handler, len(ids), err)
	}
	found := make(map[uuid.UUID]bool, len(recorded))
	for _, id := range recorded {
		found[id.Bytes] = true
	}
	seen = make([]bool, len(ids))
	for i, id := range ids {
		seen[i] = found[id]
	}
	return seen, nil
}

// RecordSet is Record for many messages in one statement. Recording a
// message twice is not an error.
func RecordSet(ctx context.Context, db DB, handler string, ids []uuid.UUID) error {
	if handler == "" {
		return ErrNoHandler
	}
	for _, id := range ids {
		if id == uuid.Nil {
			return ErrNoMessageID
		}
	}
	if len(ids) == 0 {
		return nil
	}
	sorted := slices.Clone(ids) // lock order, as insertBatch
	slices.SortFunc(sorted, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	if _, err := db.Exec(ctx,
		`INSERT INTO inbox (handler, message_id)
		 SELECT $1, id FROM unnest($2::uuid[]) WITH ORDINALITY AS m(id, n) ORDER BY n
		 ON CONFLICT DO NOTHING`,
		handler, pgUUIDs(sorted),
	); err != nil {
		return fmt.Errorf("inbox %s: record %d messages: %w", handler, len(ids), err)
	}
	return nil
}

// planEachTime makes pgx send a statement unprepared, so that PostgreSQL
// plans it for its arguments every time. A statement matching
// message_id = ANY($2) must not keep a generic plan: one made while the
// inbox was small scans every row of the handler and filters the ids,
// which costs milliseconds once the table has grown (seen in `outboxd bench
// worker`: 20 ms a lookup at 100,000 rows).
const planEachTime = pgx.QueryExecModeExec
