package deadletter

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/outboxd/outboxd/outbox"
	"github.com/outboxd/outboxd/outbox/pgtx"
)

// Beginner starts transactions: a *pgxpool.Pool or a *pgx.Conn.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// relayMetadata are the metadata keys the relay sets from the outbox row
// when it publishes; a replayed message gets fresh ones.
var relayMetadata = []string{outbox.MetadataMessageID, outbox.MetadataKey, outbox.MetadataEnqueuedAt}

// Replay re-drives the dead letters with the given ids: in one transaction it
// deletes them and puts their messages back into the outbox with
// outbox.Enqueue, same message id, topic, key, payload and metadata, so the
// relay publishes them again once the transaction commits. Handlers that
// already processed a message skip it through their inbox; the one that
// failed runs again. Several dead letters of one message (two handlers gave
// up on it) are enqueued once.
//
// Replay is all or nothing: if any id is not a dead letter it replays none
// and returns an error wrapping ErrNotFound. It returns how many dead
// letters it replayed.
func Replay(ctx context.Context, db Beginner, ids ...int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay dead letters: begin: %w", err)
	}
	defer pgtx.Rollback(ctx, tx)

	rows, err := tx.Query(ctx, `
DELETE FROM dead_letters WHERE id = ANY($1::bigint[])
RETURNING id, message_id, topic, payload, metadata`, ids)
	if err != nil {
		return 0, fmt.Errorf("replay dead letters: %w", err)
	}
	letters, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		err := r.Scan(&d.ID, &d.MessageID, &d.Topic, &d.Payload, &d.Metadata)
		return d, err
	})
	if err != nil {
		return 0, fmt.Errorf("replay dead letters: %w", err)
	}
	if len(letters) != len(ids) {
		return 0, fmt.Errorf("replay dead letters %v: %w", missing(ids, letters), ErrNotFound)
	}
	slices.SortFunc(letters, func(a, b DeadLetter) int { return cmp.Compare(a.ID, b.ID) })

	msgs := make([]outbox.Message, 0, len(letters))
	queued := make(map[uuid.UUID]bool, len(letters))
	for _, d := range letters {
		if queued[d.MessageID] {
			continue
		}
		queued[d.MessageID] = true
		msgs = append(msgs, message(d))
	}
	if err := outbox.EnqueueTx(ctx, tx, msgs...); err != nil {
		return 0, fmt.Errorf("replay dead letters: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("replay dead letters: commit: %w", err)
	}
	return int64(len(letters)), nil
}

// message is the outbox message that re-drives d.
func message(d DeadLetter) outbox.Message {
	md := maps.Clone(d.Metadata)
	for _, k := range relayMetadata {
		delete(md, k)
	}
	return outbox.Message{
		ID:       d.MessageID,
		Topic:    d.Topic,
		Key:      d.Metadata[outbox.MetadataKey],
		Payload:  d.Payload,
		Metadata: md,
	}
}

func missing(ids []int64, found []DeadLetter) []int64 {
	have := make(map[int64]bool, len(found))
	for _, d := range found {
		have[d.ID] = true
	}
	var out []int64
	for _, id := range ids {
		if !have[id] {
			out = append(out, id)
		}
	}
	return out
}
