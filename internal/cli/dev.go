package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/outboxd/outboxd/internal/admin"
	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/database"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/relay"
)

// DevCmd runs the whole system in one process for development: it creates
// and migrates the database, starts an embedded NATS JetStream server unless
// BROKER_URL names a broker, and runs the API (with its profile client), the
// relay and the worker (with the profile service) with a mailer that logs
// each welcome email.
type DevCmd struct {
	HTTPAddr  string `name:"http-addr" env:"HTTP_ADDR" default:"127.0.0.1:8080" help:"API listen address."`
	AdminAddr string `name:"admin-addr" env:"ADMIN_ADDR" default:"127.0.0.1:9090" help:"Listen address of the relay's and worker's /metrics, /healthz and /readyz."`
	DataDir   string `name:"data-dir" env:"OUTBOXD_DATA_DIR" default:".outboxd" help:"Where the embedded NATS server keeps its streams."`
	BrokerFlags
	APIFlags
	RelayFlags
	WorkerFlags
	ConsoleFlags
}

// Run runs every role until ctx ends (Ctrl-C, SIGTERM).
func (c *DevCmd) Run(ctx context.Context, g *Globals) error {
	logger := g.Logger()
	if err := createDatabase(ctx, g.DatabaseURL); err != nil {
		return err
	}
	// One pool for every role: the worker's share, and pgx's default for
	// the rest.
	pool, err := g.Pool(ctx, database.WithMaxConns(c.WorkerFlags.config(logger, nil).Connections()+4))
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := database.NewMigrator(pool, logger)
	if err != nil {
		return err
	}
	_, err = m.Up(ctx)
	m.Close()
	if err != nil {
		return err
	}

	bcfg, err := c.BrokerFlags.config(g, logger)
	if err != nil {
		return err
	}
	if bcfg.Kind == broker.KindNATS && c.BrokerURL == "" {
		url, stop, err := broker.StartEmbeddedNATS(ctx, filepath.Join(c.DataDir, "nats"))
		if err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		defer stop()
		bcfg.URL = url
		logger.Info("embedded NATS JetStream started", "url", url, "dir", filepath.Join(c.DataDir, "nats"))
	}

	reg := newRegistry()
	r, closePub, err := newRelay(ctx, pool, bcfg, c.RelayFlags.config(bcfg.Kind, logger, reg))
	if err != nil {
		return err
	}
	defer closePub()
	w, workerBeside, err := newWorker(pool, bcfg, mail.LogMailer{Logger: logger}, c.WorkerFlags, logger, reg)
	if err != nil {
		return err
	}
	apiFlags := c.APIFlags
	apiFlags.OutboxNotify = cmp.Or(apiFlags.OutboxNotify, devNotify(c.Capture))
	srv, apiBeside, err := newAPI(g, pool, bcfg, apiFlags, c.HTTPAddr)
	if err != nil {
		return err
	}
	apiLn, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("api listen on %s: %w", c.HTTPAddr, err)
	}
	adminLn, err := net.Listen("tcp", c.AdminAddr)
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("admin listen on %s: %w", c.AdminAddr, err)
	}
	ready := func(ctx context.Context) error { return errors.Join(r.Ready(ctx), w.Ready(ctx)) }
	con := c.ConsoleFlags
	metricsURL := "http://" + adminLn.Addr().String() + "/metrics" // the relay's and the worker's
	con.RelayMetrics, con.WorkerMetrics = cmp.Or(con.RelayMetrics, metricsURL), cmp.Or(con.WorkerMetrics, metricsURL)
	serveConsole, consoleURL, err := newConsole(pool, con, logger)
	if err != nil {
		apiLn.Close()
		adminLn.Close()
		return err
	}

	base := "http://" + apiLn.Addr().String()
	fmt.Fprintf(g.stdout, `outboxd dev is running: API %s, relay and worker metrics http://%s/metrics
Try a signup (the welcome email is printed in the log):

  curl -si %s/v1/signup -H 'Content-Type: application/json' \
    -d '{"email":"ann@example.com","name":"Ann","password":"correct horse battery"}'

then read the profile the worker made, over the broker:

  curl -si %s/v1/users/ID/profile

The operator's console (backlog, relay, dead letters): %s

Ctrl-C stops everything.
`, base, adminLn.Addr(), base, base, consoleURL)

	run := []func(context.Context) error{r.Run, w.Run, serveConsole,
		func(ctx context.Context) error { return srv.Serve(ctx, apiLn) },
		func(ctx context.Context) error {
			return admin.ServeListener(ctx, adminLn, admin.Handler(reg, ready), logger)
		},
	}
	return runAll(ctx, slices.Concat(run, apiBeside, workerBeside)...)
}

// devNotify is dev's OUTBOX_NOTIFY when it is unset: the API wakes the
// relay beside it unless that relay is told to stream the WAL. With
// RELAY_CAPTURE=auto it notifies: a relay that ends up polling needs the
// wake-up, one that streams ignores it.
func devNotify(capture string) string {
	if relay.Capture(capture) == relay.CaptureWAL {
		return notifyOff
	}
	return notifyOn
}

// createDatabase creates the database dsn names when the server answers but
// lacks it, connecting to the server's postgres database to do so.
func createDatabase(ctx context.Context, dsn string) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return errors.New("parse DATABASE_URL: not a valid PostgreSQL connection string")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return nil // let Pool report it, in its one line
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created meanwhile
			return nil
		}
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}
