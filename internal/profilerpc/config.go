package profilerpc

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outboxd/outboxd/internal/broker"
)

// Defaults of ClientConfig and ServerConfig.
const (
	// TimeoutDefault is the default ClientConfig.Timeout.
	TimeoutDefault = 2 * time.Second
	// ConcurrencyDefault is the default ServerConfig.Concurrency.
	ConcurrencyDefault = 8
	// LookupTimeoutDefault is the default ServerConfig.LookupTimeout.
	LookupTimeoutDefault = 5 * time.Second
)

// ClientConfig tunes a Client.
type ClientConfig struct {
	// Timeout is how long Profile waits for the reply before it gives up
	// with ErrTimeout. Defaults to TimeoutDefault (2 s).
	Timeout time.Duration
	// RequestTopic is the topic requests are sent to; it must be the
	// services' ServerConfig.RequestTopic. Two deployments sharing a broker
	// tell their requests apart with it. Defaults to RequestTopicDefault
	// ("profile.get").
	RequestTopic string
	// Logger receives the Client's logs. Defaults to slog.Default().
	Logger *slog.Logger
	// Registerer registers the Client's metrics. Defaults to none: the
	// metrics are kept but not exported.
	Registerer prometheus.Registerer
}

// WithDefaults returns c with every unset field at its default.
func (c ClientConfig) WithDefaults() ClientConfig {
	c.Timeout = cmp.Or(c.Timeout, TimeoutDefault)
	c.RequestTopic = cmp.Or(c.RequestTopic, RequestTopicDefault)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	return c
}

// validate reports every invalid field of a defaulted config by name.
func (c ClientConfig) validate() error {
	var errs []error
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("ClientConfig.Timeout: must be positive, got %s", c.Timeout))
	}
	if err := checkRequestTopic(c.RequestTopic); err != nil {
		errs = append(errs, fmt.Errorf("ClientConfig.RequestTopic: %w", err))
	}
	return errors.Join(errs...)
}

// ServerConfig tunes a Server.
type ServerConfig struct {
	// Concurrency is how many requests one Server works on at once.
	// Defaults to ConcurrencyDefault (8).
	Concurrency int
	// LookupTimeout bounds the database lookup of a request that does not
	// say how long its sender waits; a request that does is bounded by that.
	// Defaults to LookupTimeoutDefault (5 s).
	LookupTimeout time.Duration
	// RequestTopic is the topic the Server takes requests from. Defaults to
	// RequestTopicDefault ("profile.get").
	RequestTopic string
	// Logger receives the Server's logs. Defaults to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with every unset field at its default.
func (c ServerConfig) WithDefaults() ServerConfig {
	c.Concurrency = cmp.Or(c.Concurrency, ConcurrencyDefault)
	c.LookupTimeout = cmp.Or(c.LookupTimeout, LookupTimeoutDefault)
	c.RequestTopic = cmp.Or(c.RequestTopic, RequestTopicDefault)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	return c
}

// validate reports every invalid field of a defaulted config by name.
func (c ServerConfig) validate() error {
	var errs []error
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("ServerConfig.Concurrency: must be positive, got %d", c.Concurrency))
	}
	if c.LookupTimeout < 0 {
		errs = append(errs, fmt.Errorf("ServerConfig.LookupTimeout: must be positive, got %s", c.LookupTimeout))
	}
	if err := checkRequestTopic(c.RequestTopic); err != nil {
		errs = append(errs, fmt.Errorf("ServerConfig.RequestTopic: %w", err))
	}
	return errors.Join(errs...)
}

// checkRequestTopic accepts what every broker accepts as a topic (as
// package broker does), outside the reply topics' namespace.
func checkRequestTopic(topic string) error {
	if !requestTopicPattern.MatchString(topic) || len(topic) > 200 {
		return fmt.Errorf("%q: %w", topic, broker.ErrInvalidTopic)
	}
	if strings.HasPrefix(topic, ReplyTopicPrefix) {
		return fmt.Errorf("%q is in the reply topics' namespace %s", topic, ReplyTopicPrefix)
	}
	return nil
}
