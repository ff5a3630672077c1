package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/alecthomas/kong"

	"github.com/outboxd/outboxd/internal/bench"
	"github.com/outboxd/outboxd/internal/broker"
)

// BenchCmd measures outboxd against its ceilings and Watermill's forwarder.
type BenchCmd struct {
	Signup    BenchRun `cmd:"" help:"HTTP signups/s and p50/p99 at 1/16/64 clients (argon2 as configured and minimal) vs the same transaction as raw SQL."`
	Enqueue   BenchRun `cmd:"" help:"The outbox row added to a signup transaction (EnqueueBatch with NOTIFY, Writer{WithoutNotify} and pg_logical_emit_message in one batch, Enqueue in BEGIN…COMMIT) vs the user insert alone: the overhead."`
	Relay     BenchRun `cmd:"" help:"Drain of a pre-filled backlog (--messages): no-op publisher vs raw claim-and-delete SQL; per transport of --brokers, the relay vs the client's raw loop (nats.go PublishAsync, amqp091 with confirms, pipelined go-redis XADD, sarama AsyncProducer on kfake or --kafka-brokers) to the same destination; watermill-sql vs raw claim-and-delete."`
	Latency   BenchRun `cmd:"" help:"commit → publish and commit → handler p50/p95/p99 at a steady rate, relay in wal vs poll, and again with a write transaction held open (--long-tx)."`
	Forwarder BenchRun `cmd:"" help:"The same drain and latency runs with Watermill's components/forwarder over watermill-sql, side by side."`
	Capture   BenchRun `cmd:"" help:"Sustained capture of --messages rows written at full speed: relay in wal with a no-op publisher vs a raw pglogrepl receive loop on a slot of its own."`
	Idle      BenchRun `cmd:"" help:"Transactions/s the relay causes on an empty outbox in wal and in poll, net of a window without a relay (--idle-duration each)."`
	Flat      BenchRun `cmd:"" help:"Cost flat as work grows: drains of backlogs of --sizes rows (no-op and NATS, poll, no retention) and EXPLAIN (ANALYZE, BUFFERS) of a claim at each size (explain-<size>.txt); a no-op drain of --messages rows with --retention vs without."`
	Worker    BenchRun `cmd:"" help:"The real outboxd worker, run as a child process: drain of --messages user.created waiting in NATS JetStream with profile + audit vs a raw batched SQL loop writing the same rows (4 connections, 100 users a transaction); the same drain with email to a local SMTP sink (--smtp-delay) vs raw mail.NewSMTP sends (4 connections); commit → profile row p50/p95/p99 at --rate for --duration, new worker vs today's (one message at a time); the worker's peak and median RSS during the first drain."`
}

// BenchRun runs one benchmark; its name is the subcommand's.
type BenchRun struct {
	Duration    time.Duration `name:"duration" default:"5s" help:"Length of each measured point and of a latency run."`
	Concurrency int           `name:"concurrency" default:"0" help:"Clients, transactions in flight, writers or relay lanes; 0 uses each benchmark's own (signup: 1, 16 and 64)."`
	Messages    int           `name:"messages" default:"0" help:"Backlog the relay, forwarder and worker benchmarks drain, rows the capture benchmark writes; 0 is 200000."`
	Rate        int           `name:"rate" default:"500" help:"Messages per second of the latency runs."`
	LongTx      time.Duration `name:"long-tx" default:"6s" help:"How long the latency benchmark holds a write transaction open in its long-transaction runs."`
	IdleFor     time.Duration `name:"idle-duration" default:"30s" help:"How long the idle benchmark counts transactions, for each relay mode and for the baseline."`
	TxRows      int           `name:"tx-rows" default:"10" help:"Rows in each writer transaction of the capture benchmark."`
	Broker      string        `name:"broker" default:"nats" enum:"nats" help:"Broker to publish to (${enum}); the benchmarks compare against raw nats.go loops."`
	BrokerURL   string        `name:"broker-url" help:"NATS server to use; empty starts an embedded one on a free loopback port."`
	Brokers     []string      `name:"brokers" sep:"," default:"nats,amqp,redis,kafka,postgres" help:"Transports the relay benchmark drains to, each beside its raw client loop, comma-separated."`
	AMQPURL     string        `name:"amqp-url" default:"amqp://guest:guest@127.0.0.1:5672/" help:"RabbitMQ of the relay benchmark."`
	RedisURL    string        `name:"redis-url" default:"redis://127.0.0.1:6379/0" help:"Redis of the relay benchmark."`
	KafkaURL    string        `name:"kafka-brokers" env:"KAFKA_BROKERS" help:"Kafka cluster (comma-separated host:port) of the relay benchmark; empty starts an in-process kfake cluster."`
	Sizes       []int         `name:"sizes" sep:"," default:"20000,200000,2000000" help:"Backlogs the flat benchmark drains, in rows, comma-separated."`
	Retention   time.Duration `name:"retention" default:"1h" help:"Relay retention of the flat benchmark's drain with retention."`
	SMTPDelay   time.Duration `name:"smtp-delay" default:"0s" help:"How long the worker benchmark's SMTP sink holds each mail's answer, to play a slower mail server."`
	Out         string        `name:"out" default:"bench-results" type:"path" help:"Directory of the Markdown, CSV and SVG results."`
}

// Run runs the benchmark named by the subcommand on a fresh database of
// DATABASE_URL's server, which it drops after.
func (c *BenchRun) Run(ctx context.Context, g *Globals, kctx *kong.Context) error {
	// "bench relay" runs the relay benchmark.
	name := kctx.Selected().Name
	kinds := make([]broker.Kind, len(c.Brokers))
	for i, b := range c.Brokers {
		k, err := broker.ParseKind(b)
		if err != nil {
			return fmt.Errorf("--brokers: %w", err)
		}
		kinds[i] = k
	}
	_, err := bench.Run(ctx, name, bench.Config{
		DatabaseURL:  g.DatabaseURL,
		BrokerURL:    c.BrokerURL,
		Brokers:      kinds,
		AMQPURL:      c.AMQPURL,
		RedisURL:     c.RedisURL,
		KafkaBrokers: c.KafkaURL,
		Sizes:        c.Sizes,
		Retention:    c.Retention,
		Duration:     c.Duration,
		Concurrency:  c.Concurrency,
		Messages:     c.Messages,
		Rate:         c.Rate,
		LongTx:       c.LongTx,
		IdleDuration: c.IdleFor,
		TxRows:       c.TxRows,
		SMTPDelay:    c.SMTPDelay,
		OutDir:       c.Out,
		Out:          g.stdout,
		Progress:     g.stderr,
	})
	return err
}
