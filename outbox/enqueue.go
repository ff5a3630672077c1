package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// NotifyChannel is the PostgreSQL channel on which EnqueueTx and
// EnqueueBatch wake relays.
const NotifyChannel = "outbox_enqueued"

// ErrNoTopic is returned by EnqueueTx and EnqueueBatch for a message without a topic.
var ErrNoTopic = errors.New("outbox: message has no topic")

// notifySQL ends both insert statements: it notifies relays once the insert
// ran, in the same statement, so a call costs one statement whatever the
// number of messages. The notification is delivered at commit and dropped on
// rollback.
const notifySQL = `
SELECT pg_notify('` + NotifyChannel + `', '') FROM (SELECT count(*) FROM inserted) AS n`

// insertOneSQL writes a single message: a plain VALUES insert, the common
// case and the cheapest statement for it.
const insertOneSQL = `
	INSERT INTO outbox (message_id, topic, key, payload, metadata)
	VALUES ($1, $2, $3, $4, $5)`

// insertManySQL writes any number of messages from five arrays, in the
// order given.
const insertManySQL = `
	INSERT INTO outbox (message_id, topic, key, payload, metadata)
	SELECT m.id, m.topic, m.key, m.payload, m.metadata
	FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::jsonb[])
		WITH ORDINALITY AS m(id, topic, key, payload, metadata, n)
	ORDER BY m.n`

// The statements of EnqueueTx and EnqueueBatch, with and without the
// wake-up.
const (
	enqueueOneSQL        = "WITH inserted AS (" + insertOneSQL + returningSQL + notifySQL
	enqueueManySQL       = "WITH inserted AS (" + insertManySQL + returningSQL + notifySQL
	enqueueOneSilentSQL  = insertOneSQL
	enqueueManySilentSQL = insertManySQL
	returningSQL         = " RETURNING 1)"
)

// Writer writes messages into the outbox with options. The package's
// EnqueueTx and EnqueueBatch are those of the zero Writer.
type Writer struct {
	// WithoutNotify leaves out the pg_notify that wakes polling relays at
	// commit. PostgreSQL serializes the commits of notifying transactions
	// across the whole cluster, so writers that feed a relay capturing from
	// the WAL (which needs no wake-up) commit faster without it. A polling
	// relay still finds the messages, a poll interval later. Defaults to
	// false: relays are woken.
	WithoutNotify bool
}

// EnqueueTx writes msgs into the outbox inside tx, in one round trip. The
// messages are not published until tx commits, and they are gone if it rolls
// back: they exist if and only if the rest of tx's work does. At commit,
// relays listening on NotifyChannel are woken.
//
// Messages with the same Key are published in the order given here, and
// after those of earlier transactions.
func EnqueueTx(ctx context.Context, tx pgx.Tx, msgs ...Message) error {
	return Writer{}.EnqueueTx(ctx, tx, msgs...)
}

// EnqueueTx is the package's EnqueueTx with w's options.
func (w Writer) EnqueueTx(ctx context.Context, tx pgx.Tx, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	sql, args, err := w.statement(msgs)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("enqueue %d outbox messages: %w", len(msgs), err)
	}
	return nil
}

// Enqueue is EnqueueTx.
//
// Deprecated: use EnqueueTx, named like every call of this module that
// works inside the caller's transaction.
func Enqueue(ctx context.Context, tx pgx.Tx, msgs ...Message) error {
	return EnqueueTx(ctx, tx, msgs...)
}

// EnqueueBatch queues on b the statement that writes msgs into the outbox,
// so that it travels in the same round trip as the caller's own statements
// queued on b: the outbox then adds no round trip to the transaction.
//
// Send b inside a transaction (tx.SendBatch), or on a pool or connection
// outside one (pool.SendBatch): PostgreSQL runs a batch sent outside a
// transaction as one implicit transaction, so the messages commit with the
// batch's other statements or not at all, and the whole transaction is one
// round trip. Either way the statement's error, if any, is returned by the
// batch results (BatchResults.Close); EnqueueBatch itself returns only the
// errors of msgs (ErrNoTopic). Ordering and wake-ups are as with EnqueueTx.
func EnqueueBatch(b *pgx.Batch, msgs ...Message) error {
	return Writer{}.EnqueueBatch(b, msgs...)
}

// EnqueueBatch is the package's EnqueueBatch with w's options.
func (w Writer) EnqueueBatch(b *pgx.Batch, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	sql, args, err := w.statement(msgs)
	if err != nil {
		return err
	}
	b.Queue(sql, args...)
	return nil
}

// statement returns the statement writing msgs and its arguments.
func (w Writer) statement(msgs []Message) (string, []any, error) {
	one, many := enqueueOneSQL, enqueueManySQL
	if w.WithoutNotify {
		one, many = enqueueOneSilentSQL, enqueueManySilentSQL
	}
	if len(msgs) == 1 {
		id, topic, key, payload, metadata, err := columns(0, msgs[0])
		if err != nil {
			return "", nil, err
		}
		return one, []any{id, topic, key, payload, metadata}, nil
	}
	var (
		ids      = make([]uuid.UUID, len(msgs))
		topics   = make([]string, len(msgs))
		keys     = make([]string, len(msgs))
		payloads = make([][]byte, len(msgs))
		metadata = make([][]byte, len(msgs))
	)
	for i, m := range msgs {
		var err error
		ids[i], topics[i], keys[i], payloads[i], metadata[i], err = columns(i, m)
		if err != nil {
			return "", nil, err
		}
	}
	return many, []any{ids, topics, keys, payloads, metadata}, nil
}

// columns returns the column values of m, the i-th message of a call, with
// its defaults filled in.
func columns(i int, m Message) (id uuid.UUID, topic, key string, payload, metadata []byte, err error) {
	if m.Topic == "" {
		return id, "", "", nil, nil, fmt.Errorf("enqueue message %d: %w", i, ErrNoTopic)
	}
	id = m.ID
	if id == uuid.Nil {
		if id, err = uuid.NewV7(); err != nil {
			return id, "", "", nil, nil, fmt.Errorf("enqueue message %d: new id: %w", i, err)
		}
	}
	payload = m.Payload
	if payload == nil {
		payload = []byte{}
	}
	metadata = []byte("{}")
	if len(m.Metadata) > 0 {
		if metadata, err = json.Marshal(m.Metadata); err != nil {
			return id, "", "", nil, nil, fmt.Errorf("enqueue message %d: encode metadata: %w", i, err)
		}
	}
	return id, m.Topic, m.Key, payload, metadata, nil
}
