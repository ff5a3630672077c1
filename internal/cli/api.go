package cli

import (
	"context"
	"time"

	"github.com/outboxd/outboxd/internal/api"
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
	acfg := c.APIFlags.config(g, c.HTTPAddr)
	acfg.Registry = newRegistry()
	bcfg, err := c.BrokerFlags.config(g, acfg.Logger)
	if err != nil {
		return err
	}
	profiles, err := newProfileClient(bcfg, c.ProfileTimeout, acfg.Registry, &acfg)
	if err != nil {
		return err
	}
	pruneKeys := keyPruner(acfg.Logger, pool, c.IdempotencyKeyTTL)
	srv, err := api.New(pool, acfg)
	if err != nil {
		return err
	}
	run := []func(context.Context) error{srv.ListenAndServe}
	if profiles != nil {
		run = append(run, profiles.Run)
	}
	return runAll(ctx, appendIf(run, pruneKeys)...)
}
