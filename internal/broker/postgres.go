package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"

	"github.com/outboxd/outboxd/internal/database"
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

func newPostgresPublisher(ctx context.Context, cfg Config, logger watermill.LoggerAdapter) (*publisher, error) {
	pool, err := database.Open(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	// Straight on the pool: each Publish is its own INSERT, committed before
	// it returns, with no transaction of the caller's involved.
	p, err := wmsql.NewPublisher(wmsql.BeginnerFromPgx(pool), wmsql.PublisherConfig{
		SchemaAdapter:        postgresSchema,
		AutoInitializeSchema: true,
	}, logger)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("watermill publisher: %w", err)
	}
	return &publisher{
		transport: p,
		prepare:   checkPostgresTopic,
		release:   pool.Close,
	}, nil
}

func newPostgresSubscriber(ctx context.Context, cfg Config, group string, logger watermill.LoggerAdapter) (*subscriber, error) {
	pool, err := database.Open(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	ackDeadline := cfg.AckTimeout
	s, err := wmsql.NewSubscriber(wmsql.BeginnerFromPgx(pool), wmsql.SubscriberConfig{
		ConsumerGroup:    group,
		AckDeadline:      &ackDeadline,
		PollInterval:     postgresPollInterval,
		ResendInterval:   postgresResendInterval,
		SchemaAdapter:    postgresSchema,
		OffsetsAdapter:   wmsql.DefaultPostgreSQLOffsetsAdapter{},
		InitializeSchema: true,
	}, logger)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("watermill subscriber: %w", err)
	}
	return &subscriber{
		transport: s,
		prepare:   func(_ context.Context, topic string) error { return checkPostgresTopic(topic) },
		release:   pool.Close,
	}, nil
}
