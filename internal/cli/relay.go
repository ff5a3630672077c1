package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/outboxd/outboxd/internal/admin"
	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/relay"
)

// RelayCmd runs the relay sidecar: it publishes committed outbox rows to the
// broker. Run one beside every API replica; one is active at a time.
type RelayCmd struct {
	AdminAddr string `name:"admin-addr" env:"ADMIN_ADDR" default:":9090" help:"Listen address of /metrics, /healthz and /readyz."`
	BrokerFlags
	RelayFlags
}

// RelayFlags tune the relay engine; shared by relay and dev.
type RelayFlags struct {
	BatchSize    int           `name:"batch-size" env:"RELAY_BATCH_SIZE" default:"500" help:"Rows claimed and published at once."`
	PollInterval time.Duration `name:"poll-interval" env:"RELAY_POLL_INTERVAL" default:"1s" help:"Fallback poll when no notification arrives."`
	Retention    time.Duration `name:"retention" env:"RELAY_RETENTION" default:"0s" help:"Keep published rows this long (0 deletes them at once)."`
	MaxAttempts  int           `name:"max-attempts" env:"RELAY_MAX_ATTEMPTS" default:"5" help:"Attempts at a message the broker rejects for good before it is dead-lettered."`
}

func (f RelayFlags) config(kind broker.Kind) relay.Config {
	return relay.Config{
		BatchSize:    f.BatchSize,
		PollInterval: f.PollInterval,
		Retention:    f.Retention,
		MaxAttempts:  f.MaxAttempts,
		IsPermanent:  func(err error) bool { return broker.IsPermanent(kind, err) },
	}
}

// Run publishes until ctx ends, then stops after the batch in hand.
func (c *RelayCmd) Run(ctx context.Context, g *Globals) error {
	logger := g.Logger()
	pool, err := g.Pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	bcfg, err := c.BrokerFlags.config(g, logger)
	if err != nil {
		return err
	}
	reg := newRegistry()
	rcfg := c.RelayFlags.config(bcfg.Kind)
	rcfg.Logger, rcfg.Registerer = logger, reg
	r, closePub, err := newRelay(ctx, pool, bcfg, rcfg)
	if err != nil {
		return err
	}
	defer closePub()
	return runAll(ctx, r.Run, func(ctx context.Context) error {
		return admin.Serve(ctx, c.AdminAddr, admin.Handler(reg, r.Ready), logger)
	})
}

// newRelay connects the broker's publisher and builds the relay over it;
// closePub closes the publisher once the relay has stopped.
func newRelay(ctx context.Context, pool *pgxpool.Pool, bcfg broker.Config, rcfg relay.Config) (r *relay.Relay, closePub func(), err error) {
	pub, err := broker.NewPublisher(ctx, bcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("relay publisher: %w", err)
	}
	r, err = relay.New(pool, pub, rcfg)
	if err != nil {
		pub.Close()
		return nil, nil, err
	}
	return r, func() { pub.Close() }, nil
}

// runAll runs every fn until ctx ends or one fails, which stops the others.
// A clean stop (ctx cancelled) returns nil.
func runAll(ctx context.Context, fns ...func(context.Context) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, fn := range fns {
		g.Go(func() error { return fn(ctx) })
	}
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// newRegistry is a Prometheus registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
