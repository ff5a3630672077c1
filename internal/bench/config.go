package bench

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/outboxd/outboxd/internal/broker"
)

// Defaults of Config.
const (
	// DurationDefault is how long each measured point runs.
	DurationDefault = 5 * time.Second
	// MessagesDefault is the backlog drained by the relay benchmark.
	MessagesDefault = 200_000
	// RateDefault is the steady rate of the latency benchmarks, in messages
	// per second.
	RateDefault = 500
	// LongTxDefault is how long the latency benchmark holds its write
	// transaction open: issue 11's 6 s.
	LongTxDefault = 6 * time.Second
	// IdleDurationDefault is how long the idle benchmark counts
	// transactions, for each relay mode and for the baseline.
	IdleDurationDefault = 30 * time.Second
	// TxRowsDefault is how many rows each writer transaction of the capture
	// benchmark inserts.
	TxRowsDefault = 10
	// OutDirDefault is where results are written.
	OutDirDefault = "bench-results"
	// DatabaseURLDefault is the server on which bench databases are created.
	DatabaseURLDefault = "postgres://postgres@localhost:5432/postgres?sslmode=disable"
	// RetentionDefault is the relay retention of the flat benchmark's
	// retention drain.
	RetentionDefault = time.Hour
)

// SizesDefault are the backlogs the flat benchmark drains: issue 12's
// 20,000, 200,000 and 2,000,000 rows.
var SizesDefault = []int{20_000, 200_000, 2_000_000}

// BrokersDefault are the transports the relay benchmark drains to, in
// the order it runs them: every one outboxd publishes to.
var BrokersDefault = []broker.Kind{broker.KindNATS, broker.KindAMQP, broker.KindRedis, broker.KindKafka, broker.KindPostgres}

// Config tunes a benchmark run.
type Config struct {
	// DatabaseURL names the PostgreSQL server to measure; a fresh database
	// is created on it for the run and dropped after. Only its server and
	// credentials are used. Defaults to DatabaseURLDefault.
	DatabaseURL string
	// BrokerURL is the NATS server to publish to; empty starts an embedded
	// NATS JetStream server on a free loopback port. Defaults to "".
	BrokerURL string
	// Brokers are the transports the relay benchmark drains to, each beside
	// its raw client loop. Defaults to BrokersDefault (all of them).
	Brokers []broker.Kind
	// AMQPURL is the RabbitMQ of the relay benchmark. Defaults to
	// broker.AMQPURLDefault (127.0.0.1:5672, guest/guest).
	AMQPURL string
	// RedisURL is the Redis of the relay benchmark. Defaults to
	// broker.RedisURLDefault (127.0.0.1:6379, database 0).
	RedisURL string
	// KafkaBrokers is the Kafka cluster (comma-separated host:port) of the
	// relay benchmark; empty starts an in-process kfake cluster
	// (github.com/twmb/franz-go/pkg/kfake) of three brokers. Defaults to "".
	KafkaBrokers string
	// Sizes are the backlogs the flat benchmark drains, in rows. Defaults
	// to SizesDefault (20,000, 200,000 and 2,000,000).
	Sizes []int
	// Retention is the relay retention of the flat benchmark's drain with
	// retention, beside the same drain without. Defaults to
	// RetentionDefault (1 h).
	Retention time.Duration
	// Duration is how long each measured point (one client count, one
	// variant) runs, and the length of a latency run. Defaults to
	// DurationDefault (5 s).
	Duration time.Duration
	// Concurrency overrides each benchmark's parallelism: HTTP clients of
	// signup (instead of 1, 16 and 64), transactions in flight of enqueue
	// and latency, writers of capture, lanes of the relay. Defaults to 0,
	// each benchmark's own.
	Concurrency int
	// Messages is the backlog the relay and forwarder benchmarks drain (the
	// flat benchmark's drains with and without retention too), the rows
	// the capture benchmark writes, and the users whose user.created the
	// worker benchmark's drains handle. Defaults to MessagesDefault
	// (200,000).
	Messages int
	// Rate is the steady rate of the latency runs, in messages per second.
	// Defaults to RateDefault (500).
	Rate int
	// LongTx is how long the latency benchmark's long-transaction runs hold
	// a write transaction open. Defaults to LongTxDefault (6 s).
	LongTx time.Duration
	// IdleDuration is how long the idle benchmark counts the transactions
	// of the bench database, for each relay mode and for the baseline
	// without a relay. Defaults to IdleDurationDefault (30 s).
	IdleDuration time.Duration
	// TxRows is the number of rows in each writer transaction of the
	// capture benchmark. Defaults to TxRowsDefault (10).
	TxRows int
	// SMTPDelay is how long the worker benchmark's SMTP sink holds each
	// mail's DATA answer, to play a slower mail server. Defaults to 0.
	SMTPDelay time.Duration
	// OutDir receives the Markdown, CSV and SVG results. Defaults to
	// OutDirDefault ("bench-results").
	OutDir string
	// Out receives the result tables. Defaults to io.Discard.
	Out io.Writer
	// Progress receives progress lines during long runs. Defaults to
	// io.Discard.
	Progress io.Writer
	// Logger receives the logs of the components under test, which should
	// stay quiet. Defaults to a logger that drops everything below error.
	Logger *slog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.DatabaseURL = cmp.Or(c.DatabaseURL, DatabaseURLDefault)
	c.Duration = cmp.Or(c.Duration, DurationDefault)
	c.Rate = cmp.Or(c.Rate, RateDefault)
	c.LongTx = cmp.Or(c.LongTx, LongTxDefault)
	c.IdleDuration = cmp.Or(c.IdleDuration, IdleDurationDefault)
	c.TxRows = cmp.Or(c.TxRows, TxRowsDefault)
	c.OutDir = cmp.Or(c.OutDir, OutDirDefault)
	c.AMQPURL = cmp.Or(c.AMQPURL, broker.AMQPURLDefault)
	c.RedisURL = cmp.Or(c.RedisURL, broker.RedisURLDefault)
	c.Retention = cmp.Or(c.Retention, RetentionDefault)
	if len(c.Brokers) == 0 {
		c.Brokers = slices.Clone(BrokersDefault)
	}
	if len(c.Sizes) == 0 {
		c.Sizes = slices.Clone(SizesDefault)
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		// Level error, so that the API's access logs are not even formatted.
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	return c
}

// validate reports every out-of-range field of a defaulted config, by name.
func (c Config) validate() error {
	var errs []error
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("bench config: Duration must be positive, got %s", c.Duration))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("bench config: Concurrency must not be negative, got %d", c.Concurrency))
	}
	if c.Messages < 0 {
		errs = append(errs, fmt.Errorf("bench config: Messages must not be negative, got %d", c.Messages))
	}
	if c.Rate <= 0 {
		errs = append(errs, fmt.Errorf("bench config: Rate must be positive, got %d", c.Rate))
	}
	if c.LongTx <= 0 {
		errs = append(errs, fmt.Errorf("bench config: LongTx must be positive, got %s", c.LongTx))
	}
	if c.IdleDuration <= 0 {
		errs = append(errs, fmt.Errorf("bench config: IdleDuration must be positive, got %s", c.IdleDuration))
	}
	if c.TxRows <= 0 {
		errs = append(errs, fmt.Errorf("bench config: TxRows must be positive, got %d", c.TxRows))
	}
	if c.SMTPDelay < 0 {
		errs = append(errs, fmt.Errorf("bench config: SMTPDelay must not be negative, got %s", c.SMTPDelay))
	}
	if c.Retention <= 0 {
		errs = append(errs, fmt.Errorf("bench config: Retention must be positive, got %s", c.Retention))
	}
	for _, k := range c.Brokers {
		if !slices.Contains(BrokersDefault, k) {
			errs = append(errs, fmt.Errorf("bench config: Brokers: unknown broker %q (one of %v)", k, BrokersDefault))
		}
	}
	for _, n := range c.Sizes {
		if n <= 0 {
			errs = append(errs, fmt.Errorf("bench config: Sizes must be positive, got %d", n))
		}
	}
	return errors.Join(errs...)
}
