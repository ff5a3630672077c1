// Package bench measures outboxd against its ceilings: the same work done by
// the simplest code that could do it (raw SQL through pgx; per transport,
// the client's own pipelined loop: nats.go PublishAsync, amqp091 with
// publisher confirms, go-redis pipelined XADD, a sarama AsyncProducer) and
// by Watermill's own outbox, the forwarder. Every figure is compared with
// its baseline in the same run, on the same PostgreSQL server and broker,
// so ratios hold on a busy machine where absolute numbers do not.
//
// Each run creates a fresh database on the server of Config.DatabaseURL
// (dropped after) and starts an embedded NATS JetStream server on a free
// loopback port unless Config.BrokerURL names one; the relay benchmark
// also publishes to the RabbitMQ and Redis of Config.AMQPURL and
// Config.RedisURL (topics of the run's own, removed after) and to an
// in-process kfake Kafka cluster unless Config.KafkaBrokers names one.
// The worker benchmark runs the real `outboxd worker` as a child process
// (the binary the bench runs in, os.Executable), so that its memory is its
// own, with a local SMTP sink in the bench process as its mail server.
// Results are printed as tables and written as Markdown and CSV, with SVG
// charts and EXPLAIN plans, to Config.OutDir. `outboxd bench` is the
// command line.
package bench
