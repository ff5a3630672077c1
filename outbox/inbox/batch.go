package inbox

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/outboxd/outboxd/outbox/pgtx"
)

// Message is one delivered message of a batch for ProcessBatch: its id and
// the effect to run, once, in the batch's transaction.
type Message struct {
	// ID is the message id the inbox remembers; it must not be the zero UUID.
	ID uuid.UUID
	// Effect writes the message's effect with tx. An error undoes this
	// message's effect and inbox row only, not the rest of the batch. When
	// another message of the batch fails, Effect runs a second time in the
	// same transaction after the first run was rolled back, so it must
	// write only with tx. A nil Effect only records the message.
	Effect func(ctx context.Context, tx pgx.Tx) error
	// Pipelined declares that Effect writes with tx.Exec alone and ignores
	// the CommandTag it returns. When every message of a batch says so,
	// their statements go to the server together, in one round trip,
	// instead of one round trip each; Exec then returns an empty
	// CommandTag and a nil error, and a statement's failure makes the
	// batch run its effects again one by one, with a transaction of the
	// usual kind, to find the message it belongs to.
	Pipelined bool
}

// Outcome is what ProcessBatch did with one message of the batch.
type Outcome struct {
	// ID is the message's id.
	ID uuid.UUID
	// Done reports that this call ran the effect and recorded the message.
	Done bool
	// Err is the message's own failure (its effect, or ErrNoMessageID):
	// nothing of it was written, so let the broker redeliver it.
	Err error
}

// Duplicate reports that the inbox had already recorded the message, so the
// effect was not run: acknowledge it.
func (o Outcome) Duplicate() bool { return !o.Done && o.Err == nil }

// ProcessBatch is Process for many messages of one handler in one
// transaction: it finds the messages the inbox has not seen in one
// statement, runs the effects of those in order, all inside one savepoint,
// and commits the effects and inbox rows together. It returns one Outcome
// per message, in the order of batch.
//
// A message whose effect fails is isolated: the savepoint rolls back, the
// effects run again each inside a savepoint of its own, so that an effect
// runs twice in the transaction when another fails (only the second run
// stays), and the failing one's savepoint rolls back, its inbox row is
// removed, its Outcome carries the error, and the other messages
// are committed as if it had not been in the batch. Redelivering a batch
// changes nothing: every message is a Duplicate. A message id that appears
// twice in batch is processed once; its later copies are Duplicates (or carry
// the first copy's error). Concurrent batches that share messages are safe:
// a message is recorded by the first transaction to commit, and the others
// wait for it and see a Duplicate.
//
// A non-nil error means the batch as a whole failed (begin, the inbox
// statement, a savepoint or the commit): nothing was written, and the
// outcomes are nil. A batch of one message is Process, without a
// savepoint; any failure of it is its Outcome's Err.
func ProcessBatch(ctx context.Context, db Beginner, handler string, batch []Message) ([]Outcome, error) {
	if handler == "" {
		return nil, ErrNoHandler
	}
	if len(batch) == 1 {
		// Alone, a message needs no savepoint: it is Process, two round
		// trips fewer, and any failure is the message's.
		m := batch[0]
		done, err := Process(ctx, db, handler, m.ID, orNoEffect(m.Effect))
		return []Outcome{{ID: m.ID, Done: done, Err: err}}, nil
	}
	return inTx(ctx, db, handler, len(batch), func(tx pgx.Tx) ([]Outcome, error) {
		return ProcessBatchTx(ctx, tx, handler, batch)
	})
}

// inTx runs process, a batch of n messages, in a transaction of its own and
// commits it.
func inTx(ctx context.Context, db Beginner, handler string, n int, process func(tx pgx.Tx) ([]Outcome, error)) ([]Outcome, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("inbox %s: begin batch: %w", handler, err)
	}
	defer pgtx.Rollback(ctx, tx)
	outcomes, err := process(tx)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("inbox %s: commit batch of %d: %w", handler, n, err)
	}
	return outcomes, nil
}

// ProcessBatchTx is ProcessBatch inside the caller's transaction tx: the
// records and effects of the Done messages become visible when tx commits,
// and vanish if it rolls back. After an error the caller must roll tx back.
func ProcessBatchTx(ctx context.Context, tx pgx.Tx, handler string, batch []Message) ([]Outcome, error) {
	ids := make([]uuid.UUID, len(batch))
	for i, m := range batch {
		ids[i] = m.ID
	}
	return processTx(ctx, tx, handler, ids, messageEffects(batch))
}

// effects are how a batch's effects are written: together, on the fast
// path, or one message alone, to isolate a failure.
type effects interface {
	// together writes the effects of the messages at run inside sp; an
	// error undoes them all.
	together(ctx context.Context, sp pgx.Tx, run []int) error
	// alone writes the effect of the message at i inside sp.
	alone(ctx context.Context, sp pgx.Tx, i int) error
}

// processTx records ids for handler in tx and writes the effects of those
// the inbox had not seen with fx, isolating the messages whose effects
// fail. It is the common body of ProcessBatchTx and ProcessSetTx.
func processTx(ctx context.Context, tx pgx.Tx, handler string, ids []uuid.UUID, fx effects) ([]Outcome, error) {
	if handler == "" {
		return nil, ErrNoHandler
	}
	outcomes := make([]Outcome, len(ids))
	first := make(map[uuid.UUID]int, len(ids)) // id → index of its first copy
	distinct := make([]uuid.UUID, 0, len(ids))
	for i, id := range ids {
		outcomes[i].ID = id
		if id == uuid.Nil {
			outcomes[i].Err = ErrNoMessageID
			continue
		}
		if _, ok := first[id]; !ok {
			first[id] = i
			distinct = append(distinct, id)
		}
	}
	if len(distinct) == 0 {
		return outcomes, nil
	}

	unseen, err := insertBatch(ctx, tx, handler, distinct)
	if err != nil {
		return nil, err
	}
	var run []int // the indexes of the messages whose effects run: first copies, unseen
	for i, id := range ids {
		if first[id] == i && unseen[id] {
			run = append(run, i)
		}
	}
	ok, err := runTogether(ctx, tx, fx, run)
	if err != nil {
		return nil, fmt.Errorf("inbox %s: batch: %w", handler, err)
	}
	var failed []uuid.UUID
	for _, i := range run {
		if ok {
			outcomes[i].Done = true
			continue
		}
		if err := runIsolated(ctx, tx, fx, i); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("inbox %s: batch: %w", handler, ctx.Err())
			}
			if _, ok := err.(*savepointError); ok {
				return nil, fmt.Errorf("inbox %s: batch: %w", handler, err)
			}
			outcomes[i].Err = fmt.Errorf("inbox %s: message %s: %w", handler, ids[i], err)
			failed = append(failed, ids[i])
			continue
		}
		outcomes[i].Done = true
	}
	if len(failed) > 0 {
		if _, err := tx.Exec(ctx,
			`DELETE FROM inbox WHERE handler = $1 AND message_id = ANY($2::uuid[])`,
			planEachTime, handler, pgUUIDs(failed),
		); err != nil {
			return nil, fmt.Errorf("inbox %s: forget %d failed messages: %w", handler, len(failed), err)
		}
	}
	for i, id := range ids {
		if j, ok := first[id]; ok && j != i {
			outcomes[i].Err = outcomes[j].Err // a later copy: a duplicate unless the first failed
		}
	}
	return outcomes, nil
}

// insertBatch records ids for handler and returns the ones this call
// recorded: the messages the inbox had not seen. The ids are inserted in
// sorted order so that two batches sharing messages take their row locks in
// the same order and wait for each other instead of deadlocking.
func insertBatch(ctx context.Context, tx pgx.Tx, handler string, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	rows, err := tx.Query(ctx,
		`INSERT INTO inbox (handler, message_id)
		 SELECT $1, id FROM unnest($2::uuid[]) WITH ORDINALITY AS m(id, n) ORDER BY n
		 ON CONFLICT DO NOTHING
		 RETURNING message_id`,
		handler, pgUUIDs(sorted),
	)
	if err != nil {
		return nil, fmt.Errorf("inbox %s: record batch of %d: %w", handler, len(ids), err)
	}
	recorded, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
	if err != nil {
		return nil, fmt.Errorf("inbox %s: record batch of %d: %w", handler, len(ids), err)
	}
	unseen := make(map[uuid.UUID]bool, len(recorded))
	for _, id := range recorded {
		unseen[id.Bytes] = true
	}
	return unseen, nil
}

// runTogether writes the effects of the messages at run with fx.together
// inside one savepoint, the fast path: ok reports that it succeeded. When it
// fails, the savepoint is rolled back, undoing them all, and ok is false:
// the caller writes them again one savepoint each, to find the one that
// fails. err is a failure of the savepoint itself, or ctx's end.
func runTogether(ctx context.Context, tx pgx.Tx, fx effects, run []int) (ok bool, err error) {
	if len(run) == 0 {
		return true, nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, &savepointError{err}
	}
	if err := fx.together(ctx, sp, run); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return false, &savepointError{rbErr}
		}
		return false, nil
	}
	if err := sp.Commit(ctx); err != nil { // RELEASE SAVEPOINT
		return false, &savepointError{err}
	}
	return true, nil
}

// messageEffects are the effects of a batch of Messages: each its own
// Effect, pipelined together when every one of them says so.
type messageEffects []Message

func (b messageEffects) together(ctx context.Context, sp pgx.Tx, run []int) error {
	effects, pipeline := sp, (*pipelineTx)(nil)
	if allPipelined(b, run) {
		pipeline = newPipelineTx(sp)
		effects = pipeline
	}
	for _, i := range run {
		if err := orNoEffect(b[i].Effect)(ctx, effects); err != nil {
			return err
		}
	}
	if pipeline != nil {
		return pipeline.flush(ctx)
	}
	return nil
}

func (b messageEffects) alone(ctx context.Context, sp pgx.Tx, i int) error {
	return orNoEffect(b[i].Effect)(ctx, sp)
}

// allPipelined reports whether every message of batch[run] is Pipelined.
func allPipelined(batch []Message, run []int) bool {
	for _, i := range run {
		if !batch[i].Pipelined {
			return false
		}
	}
	return true
}

// savepointError is a failure of the savepoint itself, which leaves the
// transaction unusable, as opposed to a failure of the message's effect.
type savepointError struct{ err error }

func (e *savepointError) Error() string { return "savepoint: " + e.err.Error() }
func (e *savepointError) Unwrap() error { return e.err }

// runIsolated writes the effect of the message at i with fx.alone inside a
// savepoint and undoes it alone if it fails.
func runIsolated(ctx context.Context, tx pgx.Tx, fx effects, i int) error {
	sp, err := tx.Begin(ctx) // a pgx.Tx's Begin is a SAVEPOINT
	if err != nil {
		return &savepointError{err}
	}
	if err := fx.alone(ctx, sp, i); err != nil {
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return &savepointError{rbErr}
		}
		return err
	}
	if err := sp.Commit(ctx); err != nil { // RELEASE SAVEPOINT
		return &savepointError{err}
	}
	return nil
}

// orNoEffect returns fn, or for nil an effect that does nothing.
func orNoEffect(fn func(ctx context.Context, tx pgx.Tx) error) func(ctx context.Context, tx pgx.Tx) error {
	if fn == nil {
		return func(context.Context, pgx.Tx) error { return nil }
	}
	return fn
}
