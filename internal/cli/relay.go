package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/alecthomas/kong"
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

// captureDefault is RELAY_CAPTURE's default, in this one place (the README
// states it).
const captureDefault = relay.CaptureAuto

// relayVars are the kong variables of RelayFlags' defaults: the relay
// package's own, so that the flags cannot drift from them.
func relayVars() kong.Vars {
	return kong.Vars{
		"relay_batch_size":    strconv.Itoa(relay.BatchSizeDefault),
		"relay_poll_interval": relay.PollIntervalDefault.String(),
		"relay_max_attempts":  strconv.Itoa(relay.MaxAttemptsDefault),
		"relay_capture":       string(captureDefault),
		"relay_publication":   relay.PublicationDefault,
	}
}

// RelayFlags tune the relay engine; shared by relay and dev.
type RelayFlags struct {
	BatchSize    int           `name:"batch-size" env:"RELAY_BATCH_SIZE" default:"${relay_batch_size}" help:"Rows claimed and published at once."`
	PollInterval time.Duration `name:"poll-interval" env:"RELAY_POLL_INTERVAL" default:"${relay_poll_interval}" help:"Fallback poll when no notification arrives."`
	Retention    time.Duration `name:"retention" env:"RELAY_RETENTION" default:"0s" help:"Keep published rows this long (0 deletes them at once)."`
	MaxAttempts  int           `name:"max-attempts" env:"RELAY_MAX_ATTEMPTS" default:"${relay_max_attempts}" help:"Attempts at a message the broker rejects for good before it is dead-lettered."`
	Capture      string        `name:"capture" env:"RELAY_CAPTURE" default:"${relay_capture}" help:"How the relay finds committed rows: poll (claims them under the transaction horizon), wal (streams a logical replication slot; needs wal_level=logical and a role with REPLICATION), auto (wal where the server and role allow it, else poll)."`
	Slot         string        `name:"slot" env:"RELAY_SLOT" help:"Logical replication slot of WAL capture; empty derives one from the database name."`
	Publication  string        `name:"publication" env:"RELAY_PUBLICATION" default:"${relay_publication}" help:"Publication of the outbox's inserts that WAL capture reads."`
}

func (f RelayFlags) config(kind broker.Kind, logger *slog.Logger, reg prometheus.Registerer) relay.Config {
	return relay.Config{
		BatchSize:    f.BatchSize,
		PollInterval: f.PollInterval,
		Retention:    f.Retention,
		MaxAttempts:  f.MaxAttempts,
		Capture:      relay.Capture(f.Capture), // checked by validate
		Slot:         f.Slot,
		Publication:  f.Publication,
		IsPermanent:  func(err error) bool { return broker.IsPermanent(kind, err) },
		Logger:       logger,
		Registerer:   reg,
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
	r, closePub, err := newRelay(ctx, pool, bcfg, c.RelayFlags.config(bcfg.Kind, logger, reg))
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
