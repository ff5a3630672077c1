package nestjs

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Transport names a NestJS transport, as spelled in NESTJS_BROKER.
type Transport string

// The NestJS transports outboxd speaks.
const (
	// TransportNATS is core NATS (Transport.NATS), not JetStream.
	TransportNATS Transport = "nats"
	// TransportRMQ is RabbitMQ (Transport.RMQ).
	TransportRMQ Transport = "amqp"
	// TransportRedis is Redis PUB/SUB (Transport.REDIS), not streams.
	TransportRedis Transport = "redis"
	// TransportKafka is Apache Kafka (Transport.KAFKA).
	TransportKafka Transport = "kafka"
)

// transports lists every Transport.
var transports = []Transport{TransportNATS, TransportRMQ, TransportRedis, TransportKafka}

// ParseTransport returns the Transport s names, or an error listing the
// valid ones.
func ParseTransport(s string) (Transport, error) {
	if t := Transport(s); slices.Contains(transports, t) {
		return t, nil
	}
	return "", fmt.Errorf("unknown NestJS transport %q: want nats, amqp, redis or kafka", s)
}

// Defaults of Config.
const (
	// NATSURLDefault is the URL of a NATS server on this machine.
	NATSURLDefault = "nats://127.0.0.1:4222"
	// RMQURLDefault is the URL of a RabbitMQ on this machine with its stock
	// guest account.
	RMQURLDefault = "amqp://guest:guest@127.0.0.1:5672/"
	// RedisURLDefault is the URL of a Redis on this machine.
	RedisURLDefault = "redis://127.0.0.1:6379/0"
	// KafkaURLDefault is the address of a Kafka broker on this machine.
	KafkaURLDefault = "127.0.0.1:9092"
	// EventsDefault is the default Config.Events, in NESTJS_EVENTS's form.
	EventsDefault = "user.created=user_created"
	// ConcurrencyDefault is the default Config.Concurrency.
	ConcurrencyDefault = 8
	// LookupTimeoutDefault is the default Config.LookupTimeout.
	LookupTimeoutDefault = 5 * time.Second
)

// Route maps an outboxd topic to the NestJS event pattern its consumers
// listen for with @EventPattern.
type Route struct {
	// Topic is the outboxd topic, such as user.created.
	Topic string
	// Pattern is the NestJS event pattern, such as user_created.
	Pattern string
}

// String returns the route in NESTJS_EVENTS's form, topic=pattern.
func (r Route) String() string { return r.Topic + "=" + r.Pattern }

// ParseEvents parses NESTJS_EVENTS: comma-separated topic=pattern pairs,
// such as "user.created=user_created".
func ParseEvents(s string) ([]Route, error) {
	var (
		routes []Route
		errs   []error
	)
	for pair := range strings.SplitSeq(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		topic, pattern, ok := strings.Cut(pair, "=")
		topic, pattern = strings.TrimSpace(topic), strings.TrimSpace(pattern)
		if !ok || topic == "" || pattern == "" {
			errs = append(errs, fmt.Errorf("%q: want topic=pattern, such as %s", pair, EventsDefault))
			continue
		}
		routes = append(routes, Route{Topic: topic, Pattern: pattern})
	}
	if len(errs) == 0 && len(routes) == 0 {
		errs = append(errs, fmt.Errorf("no topic=pattern pair in %q", s))
	}
	return routes, errors.Join(errs...)
}

// Config says which NestJS transport to speak and where.
type Config struct {
	// Transport is the NestJS transport. Required.
	Transport Transport
	// URL is the transport's address: nats://host:port,
	// amqp://user:password@host:port/vhost, redis://[:password@]host:port/db
	// or comma-separated Kafka host:port brokers. It may hold a password, so
	// it never appears in logs or errors. Defaults to the transport's usual
	// local address (NATSURLDefault, RMQURLDefault, RedisURLDefault or
	// KafkaURLDefault).
	URL string
	// Queue is, on RabbitMQ, the queue of the NestJS service consuming the
	// events (its options.queue). The Emitter declares it as NestJS does.
	// Required by NewEmitter on RabbitMQ.
	Queue string
	// RequestQueue is, on RabbitMQ, the queue NestJS clients send profile
	// requests to (the options.queue of their ClientProxy); never Queue.
	// Required by NewService on RabbitMQ.
	RequestQueue string
	// Events maps topics to the event patterns they are delivered as.
	// Defaults to user.created=user_created (EventsDefault).
	Events []Route
	// KafkaTopicsInUse lists topics that exist, or will, on the same Kafka
	// cluster besides the ones it already has: outboxd's own topics when
	// BROKER=kafka names the same brokers. A pattern colliding with one of
	// them is refused at start. Defaults to none.
	KafkaTopicsInUse []string
	// Concurrency is how many requests a Service works on at once. Defaults
	// to ConcurrencyDefault (8).
	Concurrency int
	// LookupTimeout bounds the database lookup of one request. Defaults to
	// LookupTimeoutDefault (5 s).
	LookupTimeout time.Duration
	// Logger receives the logs. Defaults to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	c.URL = cmp.Or(c.URL, defaultURL(c.Transport))
	if len(c.Events) == 0 {
		c.Events, _ = ParseEvents(EventsDefault)
	}
	c.Concurrency = cmp.Or(c.Concurrency, ConcurrencyDefault)
	c.LookupTimeout = cmp.Or(c.LookupTimeout, LookupTimeoutDefault)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	return c
}

func defaultURL(t Transport) string {
	switch t {
	case TransportNATS:
		return NATSURLDefault
	case TransportRMQ:
		return RMQURLDefault
	case TransportRedis:
		return RedisURLDefault
	case TransportKafka:
		return KafkaURLDefault
	}
	return ""
}

// topicPattern is package broker's rule for topics.
var topicPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)

// kafkaTopicPattern is what Kafka accepts as a topic name.
var kafkaTopicPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

// validate reports every problem of a defaulted config that both the
// Emitter and the Service care about, naming the field.
func (c Config) validate() error {
	var errs []error
	if _, err := ParseTransport(string(c.Transport)); err != nil {
		errs = append(errs, fmt.Errorf("Config.Transport: %w", err))
	}
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("Config.URL: must not be blank"))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("Config.Concurrency: must be positive, got %d", c.Concurrency))
	}
	if c.LookupTimeout < 0 {
		errs = append(errs, fmt.Errorf("Config.LookupTimeout: must be positive, got %s", c.LookupTimeout))
	}
	return errors.Join(errs...)
}

// validateEvents reports every problem of Events on c's transport.
func (c Config) validateEvents() error {
	var errs []error
	seen := map[string]bool{}
	for _, r := range c.Events {
		if !topicPattern.MatchString(r.Topic) {
			errs = append(errs, fmt.Errorf("Config.Events: %s: topic %q is not an outboxd topic (dot-separated words, such as user.created)", r, r.Topic))
		}
		if seen[r.Topic] {
			errs = append(errs, fmt.Errorf("Config.Events: topic %s is mapped twice", r.Topic))
		}
		seen[r.Topic] = true
		if err := c.checkPattern(r.Pattern); err != nil {
			errs = append(errs, fmt.Errorf("Config.Events: %s: %w", r, err))
		}
	}
	return errors.Join(errs...)
}

// checkPattern refuses an event pattern the transport cannot carry as a
// subject, channel or topic.
func (c Config) checkPattern(p string) error {
	switch c.Transport {
	case TransportNATS:
		if strings.ContainsAny(p, " \t\r\n*>") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
			return fmt.Errorf("pattern %q is not a NATS subject without wildcards", p)
		}
	case TransportKafka:
		if !kafkaTopicPattern.MatchString(p) || p == "." || p == ".." {
			return fmt.Errorf("pattern %q is not a Kafka topic name (letters, digits, '.', '_' and '-', at most 249)", p)
		}
	}
	return nil
}
