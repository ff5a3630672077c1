package api

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outboxd/outboxd/internal/signup"
)

// Config defaults.
const (
	// AddrDefault is the default Config.Addr.
	AddrDefault = ":8080"
	// SignupRateLimitDefault is the default Config.SignupRateLimit.
	SignupRateLimitDefault = 10
	// RequestTimeoutDefault is the default Config.RequestTimeout.
	RequestTimeoutDefault = 10 * time.Second
)

// Config configures a Server.
type Config struct {
	// Addr is the listen address of ListenAndServe. Defaults to AddrDefault
	// (":8080").
	Addr string
	// SignupRateLimit is the number of signup requests a client address may
	// make per minute (with a burst of as many); a pointer to 0 turns the
	// limit off. A pointer tells "off" from "unset": write
	// new(cfg.SignupRateLimit) or new(0). Defaults to SignupRateLimitDefault
	// (10) when nil.
	SignupRateLimit *int
	// RequestTimeout bounds the handling of one request; past it the request
	// is answered 503. Defaults to RequestTimeoutDefault (10s).
	RequestTimeout time.Duration
	// TrustedProxies lists the reverse proxies in front of the API, as CIDR
	// prefixes or single addresses. On a connection from one of them the
	// rate limit's client is the right-most X-Forwarded-For address that is
	// not itself a trusted proxy; on any other connection the header is
	// ignored, so a client cannot choose the address it is limited as.
	// Defaults to none (the header is always ignored).
	TrustedProxies []string
	// Argon2 are the password hashing parameters; zero fields take their
	// defaults. Defaults to signup.DefaultParams.
	Argon2 signup.Params
	// Wake is how signups wake polling relays. Defaults to WakeCoalesced.
	Wake Wake
	// Logger receives access logs and errors, as JSON if the caller's
	// handler writes JSON; every line of a request carries its request_id.
	// Defaults to slog.Default().
	Logger *slog.Logger
	// Profiles answers GET /v1/users/{id}/profile: a *profilerpc.Client
	// asking the profile service over the broker. The rest of the API never
	// talks to the broker. Defaults to none: the route answers 501.
	Profiles ProfileSource
	// Registry receives the API's metrics and is served on /metrics. Pass
	// one to share it with other components (and add the Go and process
	// collectors yourself if you want them). Defaults to a new registry with
	// the Go and process collectors.
	Registry *prometheus.Registry
}

// Wake is how signups wake the relays that poll the outbox.
type Wake int

const (
	// WakeCoalesced notifies after each signup's commit, from outside its
	// transaction, at most once per outbox.NotifierIntervalDefault: commits
	// do not queue on PostgreSQL's cluster-wide notification lock
	// (BenchmarkEnqueueWakeUp in package outbox measures it).
	WakeCoalesced Wake = iota
	// WakeInTransaction notifies in each signup's transaction, at commit.
	WakeInTransaction
	// WakeNone never notifies: for relays that capture from the WAL.
	WakeNone
)

// withDefaults returns c with every unset field at its default.
func (c Config) withDefaults() Config {
	c.Addr = cmp.Or(c.Addr, AddrDefault)
	if c.SignupRateLimit == nil {
		c.SignupRateLimit = new(SignupRateLimitDefault)
	}
	c.RequestTimeout = cmp.Or(c.RequestTimeout, RequestTimeoutDefault)
	c.Argon2 = c.Argon2.WithDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
		c.Registry.MustRegister(
			prometheus.NewGoCollector(),
			prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
		)
	}
	return c
}

// validate reports every invalid field of a defaulted config at once.
func (c Config) validate() error {
	var errs []error
	if *c.SignupRateLimit < 0 {
		errs = append(errs, fmt.Errorf("SignupRateLimit must be 0 (off) or positive, got %d", *c.SignupRateLimit))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("RequestTimeout must be positive, got %s", c.RequestTimeout))
	}
	if _, err := parseTrustedProxies(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("TrustedProxies: %w", err))
	}
	if err := c.Argon2.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Argon2: %w", err))
	}
	return errors.Join(errs...)
}
