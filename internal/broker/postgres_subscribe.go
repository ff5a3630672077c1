package broker

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/outbox/pgtx"
)

// postgresMinBatch is the fewest rows a subscription reads in one
// transaction: watermill-sql's default batch size. A batch holds at least
// InFlight rows, or the subscription could never hand on InFlight at once,
// and with the worker's InFlight (8 and up) some times more: once a batch's
// last rows are handed on, its free slots wait until all of them are acked
// and the next batch is read, so the fewer batches the less that costs. It
// is not larger, because the group's offset moves only once a whole batch
// is acked: a crash, or a message that keeps failing, brings the whole
// batch back to the group, and the group's other members wait for it.
const postgresMinBatch = 100

// postgresRetryPause is how long a subscription waits after PostgreSQL
// failed a batch's queries before it tries again.
const postgresRetryPause = 500 * time.Millisecond

// postgresAnswerTimeout bounds moving a group's offset and committing a
// batch, once the subscription's context may be over.
const postgresAnswerTimeout = 2 * time.Second

// postgresInitTimeout bounds creating a topic's tables, as watermill-sql's
// SubscribeInitialize does.
const postgresInitTimeout = 60 * time.Second

// postgresSubscriber reads a group's rows of watermill-sql's tables, with
// its schema and offsets adapters, one goroutine per Subscribe that owns
// its output channel: watermill-sql's subscriber waits for each message's
// answer before it hands on the next. As watermill-sql does, each batch is
// read in one transaction that locks the group's offset row (FOR UPDATE)
// and moves the offset past the batch's acked prefix before it commits;
// the rows of a batch are handed on in offset order, up to inFlight of
// them unanswered at once.
type postgresSubscriber struct {
	pool    *pgxpool.Pool
	group   string
	schema  wmsql.SchemaAdapter
	offsets wmsql.OffsetsAdapter
	// isoLevel is the schema adapter's isolation level for a batch's
	// transaction.
	isoLevel pgx.TxIsoLevel
	// ackDeadline is how long a message handed on may stay unanswered
	// before it counts as nacked; 0 for no limit.
	ackDeadline time.Duration
	inFlight    int
	// consumerID is the subscriber's ULID, for an offsets adapter's
	// ConsumedMessageQuery.
	consumerID []byte
	logger     watermill.LoggerAdapter

	subscriptions
}

// newPostgresSubscriberOn is a subscriber of group on pool's database with
// watermill-sql's PostgreSQL adapters (postgresSchema), reading batches of
// max(inFlight, postgresMinBatch) rows.
func newPostgresSubscriberOn(pool *pgxpool.Pool, group string, inFlight int, ackDeadline time.Duration, logger watermill.LoggerAdapter) (*postgresSubscriber, error) {
	schema := postgresSchema
	schema.SubscribeBatchSize = max(inFlight, postgresMinBatch)
	iso, err := pgxIsoLevel(schema.SubscribeIsolationLevel())
	if err != nil {
		return nil, err
	}
	id, err := newULID(time.Now())
	if err != nil {
		return nil, err
	}
	return &postgresSubscriber{
		pool:        pool,
		group:       group,
		schema:      schema,
		offsets:     wmsql.DefaultPostgreSQLOffsetsAdapter{},
		isoLevel:    iso,
		ackDeadline: ackDeadline,
		inFlight:    inFlight,
		consumerID:  id,
		logger:      logger,
	}, nil
}

// pgxIsoLevel is pgx's name for level, as watermill-sql's pgx adapter maps
// it.
func pgxIsoLevel(level sql.IsolationLevel) (pgx.TxIsoLevel, error) {
	switch level {
	case sql.LevelReadUncommitted:
		return pgx.ReadUncommitted, nil
	case sql.LevelReadCommitted:
		return pgx.ReadCommitted, nil
	case sql.LevelRepeatableRead:
		return pgx.RepeatableRead, nil
	case sql.LevelSerializable, sql.LevelDefault:
		return pgx.Serializable, nil
	}
	return "", fmt.Errorf("isolation level %s: not supported by PostgreSQL", level)
}

// newULID is a ULID for now in its binary form, as watermill-sql gives
// its subscribers: 48 bits of Unix milliseconds, big-endian, then 80
// random bits.
func newULID(now time.Time) ([]byte, error) {
	id := make([]byte, 16)
	binary.BigEndian.PutUint64(id[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(id[6:]); err != nil {
		return nil, fmt.Errorf("subscriber id: %w", err)
	}
	return id, nil
}

// Subscribe creates topic's tables if they are missing, gives the group an
// offset row to lock if it has none, and hands on the group's rows until
// ctx ends or Close.
func (s *postgresSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.subscribe(ctx, func() (handOnFunc, error) {
		if err := s.initialize(ctx, topic); err != nil {
			return nil, err
		}
		if err := s.join(ctx, topic); err != nil {
			return nil, err
		}
		fields := watermill.LogFields{"topic": topic, "consumer_group": s.group}
		return func(ctx context.Context, out chan<- *message.Message) { s.run(ctx, topic, fields, out) }, nil
	})
}

// SubscribeInitialize creates topic's tables if they are missing.
func (s *postgresSubscriber) SubscribeInitialize(topic string) error {
	return s.whileOpen(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), postgresInitTimeout)
		defer cancel()
		return s.initialize(ctx, topic)
	})
}

// initialize runs the schema and offsets adapters' queries that create
// topic's tables, as watermill-sql's initializeSchema does: in one
// transaction when the schema adapter requires it (postgresSchema's take
// an advisory lock, so that concurrent creators do not collide).
func (s *postgresSubscriber) initialize(ctx context.Context, topic string) error {
	// The topic goes into table names and queries as it is.
	if err := checkTopic(topic); err != nil {
		return err
	}
	if err := checkPostgresTopic(topic); err != nil {
		return err
	}
	queries, err := s.schema.SchemaInitializingQueries(wmsql.SchemaInitializingQueriesParams{Topic: topic})
	if err != nil {
		return fmt.Errorf("schema queries: %w", err)
	}
	more, err := s.offsets.SchemaInitializingQueries(wmsql.OffsetsSchemaInitializingQueriesParams{Topic: topic})
	if err != nil {
		return fmt.Errorf("offsets schema queries: %w", err)
	}
	queries = append(queries, more...)
	if rt, ok := s.schema.(wmsql.RequiresTransaction); ok && rt.RequiresTransaction() {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return execAll(ctx, tx, queries) })
	} else {
		err = execAll(ctx, s.pool, queries)
	}
	if err != nil {
		return fmt.Errorf("create tables of topic %s: %w", topic, err)
	}
	return nil
}

// join runs the offsets adapter's queries before subscribing, in one
// transaction: the group's zero offset row, which each batch locks.
func (s *postgresSubscriber) join(ctx context.Context, topic string) error {
	queries, err := s.offsets.BeforeSubscribingQueries(wmsql.BeforeSubscribingQueriesParams{Topic: topic, ConsumerGroup: s.group})
	if err != nil {
		return fmt.Errorf("before subscribing queries: %w", err)
	}
	if len(queries) == 0 {
		return nil
	}
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return execAll(ctx, tx, queries) }); err != nil {
		return fmt.Errorf("add group %s to topic %s: %w", s.group, topic, err)
	}
	return nil
}

// execer runs a query, on a pool or in a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// execAll runs queries in order, stopping at the first that fails.
func execAll(ctx context.Context, db execer, queries []wmsql.Query) error {
	for _, q := range queries {
		if _, err := db.Exec(ctx, q.Query, q.Args...); err != nil {
			return err
		}
	}
	return nil
}

// run hands on the group's rows of topic, batch after batch, until ctx
// ends or Close, pausing postgresPollInterval when there are none.
func (s *postgresSubscriber) run(ctx context.Context, topic string, fields watermill.LogFields, out chan<- *message.Message) {
	for ctx.Err() == nil {
		n, err := s.batch(ctx, topic, fields, out)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && postgresLostRace(err):
			// Another member of the group moved the offset while this
			// one waited for its row: the next batch starts after it.
			s.logger.Debug("Offset moved by another member, reading again", fields.Add(watermill.LogFields{"err": err.Error()}))
		case err != nil:
			s.logger.Error("Cannot read messages, will retry", err, fields.Add(watermill.LogFields{"retry_in": postgresRetryPause}))
			pause(ctx, postgresRetryPause)
		case n == 0:
			pause(ctx, postgresPollInterval)
		}
	}
}

// postgresLostRace tells that err is a serialization failure or a
// deadlock, which a batch meets when another member of the group locked
// and moved the offset first: watermill-sql tries again at once.
func postgresLostRace(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// pause waits for d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// batch reads a batch of the group's rows in one transaction, hands them
// on, then moves the group's offset past the prefix acked (the whole batch
// unless the subscription ended first) and commits. n is the number of
// rows read.
func (s *postgresSubscriber) batch(ctx context.Context, topic string, fields watermill.LogFields, out chan<- *message.Message) (n int, err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: s.isoLevel})
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer pgtx.Rollback(ctx, tx)
	rows, err := s.read(ctx, tx, topic)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	if err := s.consumed(ctx, tx, topic, rows); err != nil {
		return len(rows), err
	}
	acked := s.handOnBatch(ctx, rows, fields, out)
	if acked == 0 {
		// Rolled back: the whole batch comes again.
		return len(rows), nil
	}
	// The ack goes out even once the subscription is over, so that the
	// acked prefix does not come again.
	ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), postgresAnswerTimeout)
	defer cancel()
	q, err := s.offsets.AckMessageQuery(wmsql.AckMessageQueryParams{
		Topic: topic, LastRow: rows[acked-1], Rows: rows[:acked], ConsumerGroup: s.group,
	})
	if err != nil {
		return len(rows), fmt.Errorf("ack query: %w", err)
	}
	if _, err := tx.Exec(ackCtx, q.Query, q.Args...); err != nil {
		return len(rows), fmt.Errorf("move offset of group %s: %w", s.group, err)
	}
	if err := tx.Commit(ackCtx); err != nil {
		return len(rows), fmt.Errorf("commit offset of group %s: %w", s.group, err)
	}
	return len(rows), nil
}

// read reads the group's next batch of rows of topic in tx, which locks
// the group's offset row, in offset order.
func (s *postgresSubscriber) read(ctx context.Context, tx pgx.Tx, topic string) ([]wmsql.Row, error) {
	q, err := s.schema.SelectQuery(wmsql.SelectQueryParams{Topic: topic, ConsumerGroup: s.group, OffsetsAdapter: s.offsets})
	if err != nil {
		return nil, fmt.Errorf("select query: %w", err)
	}
	result, err := tx.Query(ctx, q.Query, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("select messages: %w", err)
	}
	defer result.Close()
	var rows []wmsql.Row
	for result.Next() {
		row, err := s.schema.UnmarshalMessage(wmsql.UnmarshalMessageParams{Row: result})
		if err != nil {
			return nil, fmt.Errorf("read message: %w", err)
		}
		rows = append(rows, row)
	}
	if err := result.Err(); err != nil {
		return nil, fmt.Errorf("select messages: %w", err)
	}
	return rows, nil
}

// consumed runs the offsets adapter's ConsumedMessageQuery for each row,
// where it has one (postgresSchema's has none), before any is handed on.
func (s *postgresSubscriber) consumed(ctx context.Context, tx pgx.Tx, topic string, rows []wmsql.Row) error {
	for _, row := range rows {
		q, err := s.offsets.ConsumedMessageQuery(wmsql.ConsumedMessageQueryParams{
			Topic: topic, Row: row, ConsumerGroup: s.group, ConsumerULID: s.consumerID,
		})
		if err != nil {
			return fmt.Errorf("consumed message query: %w", err)
		}
		if q.IsZero() {
			continue
		}
		if _, err := tx.Exec(ctx, q.Query, q.Args...); err != nil {
			return fmt.Errorf("mark message %s consumed: %w", row.Msg.UUID, err)
		}
	}
	return nil
}

// Close ends every subscription, moving each group's offset past what it
// acked of its batch and giving back the rest. It may be called more than
// once; the pool is the constructor's to close.
func (s *postgresSubscriber) Close() error {
	s.closeAll()
	return nil
}
