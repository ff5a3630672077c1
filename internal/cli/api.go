package cli

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/api"
	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/signup"
)

// APICmd serves the signup HTTP API; profiles are read from the profile
// service over the broker.
type APICmd struct {
	HTTPAddr string `name:"http-addr" env:"HTTP_ADDR" default:":8080" help:"API listen address."`
	BrokerFlags
	APIFlags
}

// APIFlags are the API settings shared by api and dev.
type APIFlags struct {
	SignupRateLimit   int           `name:"signup-rate-limit" env:"SIGNUP_RATE_LIMIT" default:"10" help:"Signups per minute per client address; 0 turns the limit off."`
	TrustedProxies    []string      `name:"trusted-proxies" env:"TRUSTED_PROXIES" help:"Comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client; empty ignores the header."`
	RequestTimeout    time.Duration `name:"request-timeout" env:"REQUEST_TIMEOUT" default:"10s" help:"Time limit for one request."`
	Argon2MemoryKiB   uint32        `name:"argon2-memory-kib" env:"ARGON2_MEMORY_KIB" default:"19456" help:"argon2id memory cost in KiB."`
	Argon2Iterations  uint32        `name:"argon2-iterations" env:"ARGON2_ITERATIONS" default:"2" help:"argon2id iterations."`
	Argon2Parallelism uint8         `name:"argon2-parallelism" env:"ARGON2_PARALLELISM" default:"1" help:"argon2id parallelism."`
	ProfileTimeout    time.Duration `name:"profile-request-timeout" env:"PROFILE_REQUEST_TIMEOUT" default:"2s" help:"How long GET /v1/users/{id}/profile waits for the profile service before it answers 504."`
	IdempotencyKeyTTL time.Duration `name:"idempotency-key-ttl" env:"IDEMPOTENCY_KEY_TTL" default:"24h" help:"How long an Idempotency-Key's response is kept for replay before the key is pruned; 0 keeps keys forever, otherwise at least 1h."`
	// Empty is on, except in dev beside a relay told to stream the WAL.
	OutboxNotify string `name:"outbox-notify" env:"OUTBOX_NOTIFY" placeholder:"on|off" help:"Wake the relays with pg_notify at each signup's commit (on) or not (off: relays that capture from the WAL need no wake-up). Defaults to on; dev defaults to off when RELAY_CAPTURE=wal."`
}

func (f APIFlags) config(g *Globals, addr string) api.Config {
	return api.Config{
		Addr:            addr,
		SignupRateLimit: new(f.SignupRateLimit),
		TrustedProxies:  f.TrustedProxies,
		RequestTimeout:  f.RequestTimeout,
		Argon2: signup.Params{
			MemoryKiB:   f.Argon2MemoryKiB,
			Iterations:  f.Argon2Iterations,
			Parallelism: f.Argon2Parallelism,
		},
		Wake:   wake(f.OutboxNotify),
		Logger: g.Logger(),
	}
}

// Run serves the API until ctx ends (SIGTERM, Ctrl-C), then drains in-flight
// requests. The broker is needed by the profile route only: the API starts
// and signs up while it is away.
func (c *APICmd) Run(ctx context.Context, g *Globals) error {
	pool, err := g.Pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	bcfg, err := c.BrokerFlags.config(g, g.Logger())
	if err != nil {
		return err
	}
	srv, beside, err := newAPI(g, pool, bcfg, c.APIFlags, c.HTTPAddr)
	if err != nil {
		return err
	}
	return runAll(ctx, append(beside, srv.ListenAndServe)...)
}

// newAPI builds the API server, with a registry of its own, and the loops
// that run beside it: the profile service's client (when the broker has
// request–reply) and the idempotency-key pruner (unless keys are kept).
func newAPI(g *Globals, pool *pgxpool.Pool, bcfg broker.Config, f APIFlags, addr string) (*api.Server, []func(context.Context) error, error) {
	acfg := f.config(g, addr)
	acfg.Registry = newRegistry()
	profiles, err := newProfileClient(bcfg, f.ProfileTimeout, acfg.Registry, &acfg)
	if err != nil {
		return nil, nil, err
	}
	srv, err := api.New(pool, acfg)
	if err != nil {
		return nil, nil, err
	}
	var beside []func(context.Context) error
	if profiles != nil {
		beside = append(beside, profiles.Run)
	}
	return srv, appendIf(beside, keyPruner(acfg.Logger, pool, f.IdempotencyKeyTTL)), nil
}
