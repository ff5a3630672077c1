package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// NotifyChannel is the PostgreSQL channel on which Enqueue wakes relays.
const NotifyChannel = "outbox_enqueued"

// ErrNoTopic is returned by Enqueue for a message without a topic.
var ErrNoTopic = errors.New("outbox: message has no topic")

// enqueueSQL inserts every message and notifies relays in one statement, so
// a call costs one round trip whatever the number of messages. The
// notification is delivered at commit and dropped on rollback.
const enqueueSQL = `
WITH inserted AS (
	INSERT INTO outbox (message_id, topic, key, payload, metadata)
	SELECT m.id, m.topic, m.key, m.payload, m.metadata
	FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::jsonb[])
		WITH ORDINALITY AS m(id, topic, key, payload, metadata, n)
	ORDER BY m.n
	RETURNING 1
)
SELECT pg_notify('` + NotifyChannel + `', '') FROM (SELECT count(*) FROM inserted) AS n`

// Enqueue writes msgs into the outbox inside tx, in one round trip. The
// messages are not published until tx commits, and they are gone if it rolls
// back: they exist if and only if the rest of tx's work does. At commit,
// relays listening on NotifyChannel are woken.
//
// Messages with the same Key are published in the order given here, and
// after those of earlier transactions.
func Enqueue(ctx context.Context, tx pgx.Tx, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	var (
		ids      = make([]uuid.UUID, len(msgs))
		topics   = make([]string, len(msgs))
		keys     = make([]string, len(msgs))
		payloads = make([][]byte, len(msgs))
		metadata = make([][]byte, len(msgs))
	)
	for i, m := range msgs {
		if m.Topic == "" {
			return fmt.Errorf("enqueue message %d: %w", i, ErrNoTopic)
		}
		ids[i] = m.ID
		if m.ID == uuid.Nil {
			id, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("enqueue message %d: new id: %w", i, err)
			}
			ids[i] = id
		}
		topics[i], keys[i] = m.Topic, m.Key
		payloads[i] = m.Payload
		if payloads[i] == nil {
			payloads[i] = []byte{}
		}
		md := []byte("{}")
		if len(m.Metadata) > 0 {
			b, err := json.Marshal(m.Metadata)
			if err != nil {
				return fmt.Errorf("enqueue message %d: encode metadata: %w", i, err)
			}
			md = b
		}
		metadata[i] = md
	}
	if _, err := tx.Exec(ctx, enqueueSQL, ids, topics, keys, payloads, metadata); err != nil {
		return fmt.Errorf("enqueue %d outbox messages: %w", len(msgs), err)
	}
	return nil
}
