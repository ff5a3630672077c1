package worker

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The handlers a worker can run, as named in Config.Handlers and
// `--handlers`. Each also names the handler in the inbox and in dead_letters.
const (
	// HandlerEmail sends the welcome email.
	HandlerEmail = "email"
	// HandlerProfile creates the user's profile row.
	HandlerProfile = "profile"
	// HandlerAudit appends user.created to audit_log.
	HandlerAudit = "audit"
)

// AllHandlers lists the handlers that run by default, in the order they
// start.
var AllHandlers = []string{HandlerEmail, HandlerProfile, HandlerAudit}

// OptionalHandlers lists the handlers that run only when named:
// HandlerNestJS, which needs Config.NestJS.
var OptionalHandlers = []string{HandlerNestJS}

// GroupPrefix starts the consumer group of each handler: outboxd-email,
// outboxd-profile, outboxd-audit.
const GroupPrefix = "outboxd-"

// Group returns the consumer group of handler.
func Group(handler string) string { return GroupPrefix + handler }

// Defaults of Config.
const (
	// MaxRetriesDefault is the default Config.MaxRetries.
	MaxRetriesDefault = 5
	// RetryInitialIntervalDefault is the default Config.RetryInitialInterval.
	RetryInitialIntervalDefault = 500 * time.Millisecond
	// RetryMaxIntervalDefault is the default Config.RetryMaxInterval.
	RetryMaxIntervalDefault = 10 * time.Second
	// HandlerTimeoutDefault is the default Config.HandlerTimeout.
	HandlerTimeoutDefault = 30 * time.Second
	// ConcurrencyDefault is the default Config.Concurrency.
	ConcurrencyDefault = 16
	// BatchSizeDefault is the default Config.BatchSize.
	BatchSizeDefault = 100
	// BatchWaitDefault is the default Config.BatchWait.
	BatchWaitDefault = 5 * time.Millisecond
)

// Config tunes a Worker.
type Config struct {
	// Handlers names the handlers to run (HandlerEmail, HandlerProfile,
	// HandlerAudit, HandlerNestJS). Defaults to AllHandlers.
	Handlers []string
	// NestJS is the transport of HandlerNestJS. Required when Handlers
	// names it.
	NestJS Emitter
	// MaxRetries is how many times a failed attempt is retried before the
	// message is dead-lettered; negative turns retries off. Defaults to
	// MaxRetriesDefault (5).
	MaxRetries int
	// RetryInitialInterval is the wait before the first retry; each further
	// wait doubles, with ±20 % jitter. Defaults to
	// RetryInitialIntervalDefault (500 ms).
	RetryInitialInterval time.Duration
	// RetryMaxInterval caps the wait between retries. Defaults to
	// RetryMaxIntervalDefault (10 s).
	RetryMaxInterval time.Duration
	// HandlerTimeout bounds each attempt at a message. Defaults to
	// HandlerTimeoutDefault (30 s).
	HandlerTimeout time.Duration
	// Concurrency caps the messages each handler holds unacknowledged,
	// working on them at once but never on two of the same key: a message
	// waits for the one of its key before it. The profile and audit
	// handlers, which write what they hold in batches, hold up to
	// 3 × BatchSize where that is more, and email up to BatchSize while
	// it sends at most Concurrency mails at once (see Held). How many the broker hands
	// over at once is the broker's setting. Defaults to ConcurrencyDefault
	// (16).
	Concurrency int
	// BatchSize caps how many messages the profile and audit handlers
	// write in one transaction. Defaults to BatchSizeDefault (100).
	BatchSize int
	// BatchWait is the longest a batch waits for more messages after its
	// first; it never waits when it holds every message in flight.
	// Defaults to BatchWaitDefault (5 ms).
	BatchWait time.Duration
	// Services run in the worker's router beside the handlers, and stop
	// with it. Defaults to none.
	Services []Service
	// Logger receives the worker's logs. Defaults to slog.Default().
	Logger *slog.Logger
	// Registerer registers the worker's metrics. Defaults to none: the
	// metrics are kept but not exported.
	Registerer prometheus.Registerer
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if len(c.Handlers) == 0 {
		c.Handlers = slices.Clone(AllHandlers)
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = MaxRetriesDefault
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	c.RetryInitialInterval = cmp.Or(c.RetryInitialInterval, RetryInitialIntervalDefault)
	c.RetryMaxInterval = cmp.Or(c.RetryMaxInterval, RetryMaxIntervalDefault)
	c.HandlerTimeout = cmp.Or(c.HandlerTimeout, HandlerTimeoutDefault)
	c.Concurrency = cmp.Or(c.Concurrency, ConcurrencyDefault)
	c.BatchSize = cmp.Or(c.BatchSize, BatchSizeDefault)
	c.BatchWait = cmp.Or(c.BatchWait, BatchWaitDefault)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	return c
}

// validate reports every problem of a defaulted config, naming the field.
func (c Config) validate() error {
	var errs []error
	seen := map[string]bool{}
	for _, h := range c.Handlers {
		if !slices.Contains(AllHandlers, h) && !slices.Contains(OptionalHandlers, h) {
			errs = append(errs, fmt.Errorf("Config.Handlers: unknown handler %q, want some of %v", h, slices.Concat(AllHandlers, OptionalHandlers)))
		}
		if seen[h] {
			errs = append(errs, fmt.Errorf("Config.Handlers: %q named twice", h))
		}
		seen[h] = true
	}
	if c.runs(HandlerNestJS) && c.NestJS == nil {
		errs = append(errs, fmt.Errorf("Config.NestJS: the %s handler needs a NestJS transport", HandlerNestJS))
	}
	if c.RetryInitialInterval < 0 {
		errs = append(errs, fmt.Errorf("Config.RetryInitialInterval: must not be negative, got %s", c.RetryInitialInterval))
	}
	if c.RetryMaxInterval < c.RetryInitialInterval {
		errs = append(errs, fmt.Errorf("Config.RetryMaxInterval: %s is below RetryInitialInterval %s", c.RetryMaxInterval, c.RetryInitialInterval))
	}
	for i, svc := range c.Services {
		if svc == nil {
			errs = append(errs, fmt.Errorf("Config.Services: service %d is nil", i))
		}
	}
	if c.HandlerTimeout < 0 {
		errs = append(errs, fmt.Errorf("Config.HandlerTimeout: must not be negative, got %s", c.HandlerTimeout))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("Config.Concurrency: must be at least 1, got %d", c.Concurrency))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("Config.BatchSize: must be at least 1, got %d", c.BatchSize))
	}
	if c.BatchWait < 0 {
		errs = append(errs, fmt.Errorf("Config.BatchWait: must not be negative, got %s", c.BatchWait))
	}
	return errors.Join(errs...)
}

// Held returns how many messages handler holds unacknowledged at most:
// Concurrency; for a handler that writes in batches (profile, audit)
// max(Concurrency, 3 × BatchSize), so that a full batch fills while the two
// before it commit; for email max(Concurrency, BatchSize), since its inbox
// lookups and records go in batches, while it sends at most Concurrency
// mails at once (and the mailer's own limit, SMTP_CONCURRENCY, applies).
// With a BatchSize of 1 every handler holds Concurrency. Give its subscription as many (broker.Config.InFlight).
func (c Config) Held(handler string) int {
	c = c.WithDefaults()
	switch {
	case c.BatchSize == 1: // no batches: one message a transaction
	case batched(handler):
		return max(c.Concurrency, (batchWriters+1)*c.BatchSize)
	case handler == HandlerEmail:
		return max(c.Concurrency, c.BatchSize)
	}
	return c.Concurrency
}

// Connections returns how many database connections the worker's pool
// should offer so that no handler waits for one: batchWriters for each
// handler that writes in batches, 2 for email (a batch of lookups and one
// of records at a time), up to 8 for each other handler (its inbox checks
// and records, one message at a time each), and 4 for the dead letters,
// readiness and the services beside the handlers.
func (c Config) Connections() int {
	c = c.WithDefaults()
	n := 4
	for _, h := range c.Handlers {
		switch {
		case batched(h):
			n += batchWriters
		case h == HandlerEmail:
			n += 2
		default:
			n += min(c.Concurrency, 8)
		}
	}
	return n
}

// batched reports whether handler writes its messages in batches.
func batched(handler string) bool { return handler == HandlerProfile || handler == HandlerAudit }

// runs reports whether the config selects handler.
func (c Config) runs(handler string) bool { return slices.Contains(c.Handlers, handler) }

// errNoMailer is returned by New when the email handler is selected without
// a mailer.
var errNoMailer = errors.New("worker: the email handler needs a mailer (SMTP_ADDR and MAIL_FROM)")
