package broker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/database"
	"github.com/outboxd/outboxd/outbox/pgtx"
	"github.com/outboxd/outboxd/relay"
)

const (
	// postgresMaxTopicLen keeps watermill-sql's table names within
	// PostgreSQL's 63-byte identifiers: "watermill_offsets_" + topic. Longer
	// names would be truncated silently, and two topics could share a table.
	postgresMaxTopicLen = 63 - len("watermill_offsets_")
	// postgresPollInterval is how often an idle subscriber looks for new
	// rows; watermill-sql's default of 1 s would add up to a second of
	// latency to every event.
	postgresPollInterval = 100 * time.Millisecond
	// postgresResendInterval is the pause before a nacked message comes
	// again.
	postgresResendInterval = 100 * time.Millisecond
)

// postgresSchema stores payloads as BYTEA: watermill-sql's default column
// type, JSON, rejects payloads that are not JSON, and outbox payloads are
// arbitrary bytes.
var postgresSchema = wmsql.DefaultPostgreSQLSchema{
	GeneratePayloadType: func(string) string { return "BYTEA" },
}

func checkPostgresTopic(topic string) error {
	if len(topic) > postgresMaxTopicLen {
		return fmt.Errorf("topic %q is longer than %d bytes, the most PostgreSQL table names leave: %w", topic, postgresMaxTopicLen, ErrInvalidTopic)
	}
	return nil
}

// postgresTxHook wraps each transaction a publisher inserts in; nil keeps
// pgx's.
type postgresTxHook func(pgx.Tx) pgx.Tx

func newPostgresPublisher(ctx context.Context, cfg Config, hook postgresTxHook) (*publisher, error) {
	pool, err := database.Open(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	return &publisher{
		transport: &postgresPublisher{pool: pool, hook: hook},
		prepare:   checkPostgresTopic,
		release:   pool.Close,
	}, nil
}

// postgresPublisher inserts a run in one transaction on its own pool, one
// INSERT of all the run's messages per topic, with watermill-sql's schema
// adapter (the queries and rows its subscriber reads): it needs no
// transaction of the caller's, and commits before it returns.
type postgresPublisher struct {
	pool *pgxpool.Pool
	hook postgresTxHook
	// tables holds the topics whose table exists.
	tables sync.Map
}

// postgresMaxInsertRows keeps one INSERT within PostgreSQL's 65,535 bind
// parameters (three per row).
const postgresMaxInsertRows = 65535 / 3

// publishRun stores the run in one transaction; when PostgreSQL refuses a
// row for good it stores each message in its own, so that only that one
// fails.
func (p *postgresPublisher) publishRun(ctx context.Context, run []relay.Outgoing) []error {
	errs := make([]error, len(run))
	err := p.publishAll(ctx, run)
	if err != nil && len(run) > 1 && postgresPermanent(err) {
		for i := range run {
			errs[i] = p.publishAll(ctx, run[i:i+1])
		}
		return errs
	}
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// publishAll stores every message of run or, failing, none.
func (p *postgresPublisher) publishAll(ctx context.Context, run []relay.Outgoing) error {
	var (
		topics  []string
		byTopic = make(map[string]message.Messages)
	)
	for _, o := range run {
		if _, ok := byTopic[o.Topic]; !ok {
			if err := p.ensureTable(ctx, o.Topic); err != nil {
				return err
			}
			topics = append(topics, o.Topic)
		}
		byTopic[o.Topic] = append(byTopic[o.Topic], o.Message)
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if p.hook != nil {
		tx = p.hook(tx)
	}
	defer pgtx.Rollback(ctx, tx)
	for _, topic := range topics {
		for msgs := range slices.Chunk(byTopic[topic], postgresMaxInsertRows) {
			q, err := postgresSchema.InsertQuery(wmsql.InsertQueryParams{Topic: topic, Msgs: msgs})
			if err != nil {
				return fmt.Errorf("insert query: %w", err)
			}
			if _, err := tx.Exec(ctx, q.Query, q.Args...); err != nil {
				return fmt.Errorf("insert into %s: %w", postgresSchema.MessagesTable(topic), err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// ensureTable creates topic's table unless this publisher did already, in
// a transaction as watermill-sql does (its queries take an advisory lock
// so that concurrent creators do not collide).
func (p *postgresPublisher) ensureTable(ctx context.Context, topic string) error {
	if _, ok := p.tables.Load(topic); ok {
		return nil
	}
	queries, err := postgresSchema.SchemaInitializingQueries(wmsql.SchemaInitializingQueriesParams{Topic: topic})
	if err != nil {
		return fmt.Errorf("schema queries: %w", err)
	}
	err = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		for _, q := range queries {
			if _, err := tx.Exec(ctx, q.Query, q.Args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", postgresSchema.MessagesTable(topic), err)
	}
	p.tables.Store(topic, struct{}{})
	return nil
}

func (p *postgresPublisher) close() error { return nil }

// newPostgresSubscriber is our own subscriber on watermill-sql's tables
// (postgresSubscriber), on a pool of its own that Close closes once the
// subscriptions have committed.
func newPostgresSubscriber(ctx context.Context, cfg Config, group string, logger watermill.LoggerAdapter) (*subscriber, error) {
	pool, err := database.Open(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	s, err := newPostgresSubscriberOn(pool, group, cfg.InFlight, cfg.AckTimeout, logger)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &subscriber{
		transport:  s,
		prepare:    func(_ context.Context, topic string) error { return checkPostgresTopic(topic) },
		initialize: s.SubscribeInitialize,
		release:    pool.Close,
	}, nil
}
