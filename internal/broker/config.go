package broker

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Kind names a broker transport, as spelled in the BROKER variable.
type Kind string

// The kinds of broker outboxd can publish to and consume from.
const (
	// KindNATS is NATS JetStream.
	KindNATS Kind = "nats"
	// KindAMQP is RabbitMQ (AMQP 0.9.1).
	KindAMQP Kind = "amqp"
	// KindRedis is Redis Streams.
	KindRedis Kind = "redis"
	// KindKafka is Apache Kafka.
	KindKafka Kind = "kafka"
	// KindPostgres is PostgreSQL tables managed by watermill-sql.
	KindPostgres Kind = "postgres"
)

// kinds lists every valid Kind, the default first.
var kinds = []Kind{KindNATS, KindAMQP, KindRedis, KindKafka, KindPostgres}

// Defaults of Config.
const (
	// KindDefault is the Kind used when Config.Kind is empty.
	KindDefault = KindNATS
	// NATSURLDefault is the URL of a NATS server on this machine.
	NATSURLDefault = "nats://127.0.0.1:4222"
	// AMQPURLDefault is the URL of a RabbitMQ on this machine with its stock
	// guest account.
	AMQPURLDefault = "amqp://guest:guest@127.0.0.1:5672/"
	// RedisURLDefault is the URL of database 0 of a Redis on this machine.
	RedisURLDefault = "redis://127.0.0.1:6379/0"
	// KafkaURLDefault is the address of a Kafka broker on this machine.
	KafkaURLDefault = "127.0.0.1:9092"
	// PostgresURLDefault is the DSN of outboxd's own database on this
	// machine, the DATABASE_URL default.
	PostgresURLDefault = "postgres://postgres@localhost:5432/outbox?sslmode=disable"
	// AckTimeoutDefault is how long a delivered message may stay unanswered
	// before the broker offers it again.
	AckTimeoutDefault = 30 * time.Second
)

// Config selects and addresses a broker.
type Config struct {
	// Kind is the broker transport. Defaults to KindNATS.
	Kind Kind

	// URL is the broker's address: nats://host:port for NATS,
	// amqp://user:password@host:port/vhost for RabbitMQ,
	// redis://[:password@]host:port/db for Redis, comma-separated host:port
	// brokers for Kafka and a PostgreSQL DSN for postgres (cmd passes
	// DATABASE_URL when BROKER_URL is unset). It may hold a password, so it
	// never appears in logs or errors. Defaults to the broker's usual local
	// address (NATSURLDefault, AMQPURLDefault, RedisURLDefault,
	// KafkaURLDefault or PostgresURLDefault).
	URL string

	// AckTimeout is how long a subscriber may hold a delivered message
	// without acking or nacking it before the broker offers it to the group
	// again: JetStream's AckWait, the idle time after which a Redis consumer
	// claims another's pending message, the deadline after which a
	// PostgreSQL subscription hands a message on again.
	// RabbitMQ and Kafka redeliver when the consumer goes away instead.
	// Handlers that may run longer cause duplicates. Defaults to
	// AckTimeoutDefault (30 s).
	AckTimeout time.Duration

	// InFlight is how many delivered messages one subscription hands on
	// before the first of them is answered (acked or nacked). With 1, the
	// default, a subscription hands on one message at a time, in delivery
	// order, which is what Watermill's universal suite means by guaranteed
	// order. More lets a consumer such as the worker work on several at
	// once, still handed on in delivery order; keeping a key's messages
	// apart is then the consumer's concern. NATS JetStream honours it (the
	// group's consumer holds up to max(8, InFlight) messages unacked), and
	// so do RabbitMQ (a channel's prefetch is max(16, InFlight), each
	// message acked on its own), Redis Streams (XREADGROUP reads as many
	// as there are free places, each acked with its own XACK) and postgres
	// (a batch of max(100, InFlight) rows read in one transaction, the
	// group's offset moved once the whole batch is acked); Kafka hands
	// over one message per partition at a time whatever it says, so its
	// partitions are its concurrency.
	InFlight int

	// Logger receives the transports' logs, bridged with
	// watermill.NewSlogLogger. Defaults to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Kind = cmp.Or(c.Kind, KindDefault)
	c.URL = cmp.Or(c.URL, defaultURL(c.Kind))
	c.AckTimeout = cmp.Or(c.AckTimeout, AckTimeoutDefault)
	c.InFlight = cmp.Or(c.InFlight, 1)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	return c
}

func defaultURL(kind Kind) string {
	switch kind {
	case KindNATS:
		return NATSURLDefault
	case KindAMQP:
		return AMQPURLDefault
	case KindRedis:
		return RedisURLDefault
	case KindKafka:
		return KafkaURLDefault
	case KindPostgres:
		return PostgresURLDefault
	}
	return ""
}

// validate reports every invalid field of a defaulted config, by name.
func (c Config) validate() error {
	var errs []error
	if !slices.Contains(kinds, c.Kind) {
		_, err := ParseKind(string(c.Kind))
		errs = append(errs, fmt.Errorf("Config.Kind: %w", cmp.Or(err, fmt.Errorf("%q is not lower case", c.Kind))))
	}
	if c.AckTimeout < 0 {
		errs = append(errs, fmt.Errorf("Config.AckTimeout: must not be negative, got %s", c.AckTimeout))
	}
	if c.InFlight < 0 {
		errs = append(errs, fmt.Errorf("Config.InFlight: must not be negative, got %d", c.InFlight))
	}
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("Config.URL: must not be blank"))
	} else if c.Kind == KindNATS || c.Kind == KindAMQP || c.Kind == KindRedis {
		// Checked here because url.Parse's errors quote the whole URL,
		// password included, and the clients pass them on.
		if _, err := url.Parse(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("Config.URL: not a valid %s URL", c.Kind))
		}
	}
	return errors.Join(errs...)
}

// ParseKind returns the Kind spelled s (case-insensitive, surrounding spaces
// ignored; empty means KindDefault, as for an unset BROKER), or an error
// listing the valid kinds.
func ParseKind(s string) (Kind, error) {
	k := Kind(strings.ToLower(strings.TrimSpace(s)))
	if k == "" {
		return KindDefault, nil
	}
	for _, valid := range kinds {
		if k == valid {
			return k, nil
		}
	}
	names := make([]string, len(kinds))
	for i, valid := range kinds {
		names[i] = string(valid)
	}
	return "", fmt.Errorf("unknown broker kind %q: want one of %s", s, strings.Join(names, ", "))
}
