package cli

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outboxd/outboxd/internal/admin"
	"github.com/outboxd/outboxd/internal/broker"
	"github.com/outboxd/outboxd/internal/database"
	"github.com/outboxd/outboxd/internal/mail"
	"github.com/outboxd/outboxd/internal/worker"
)

// WorkerCmd runs the subscribers: welcome email, profile and audit log.
type WorkerCmd struct {
	AdminAddr string `name:"admin-addr" env:"ADMIN_ADDR" default:":9091" help:"Listen address of /metrics, /healthz and /readyz."`
	BrokerFlags
	WorkerFlags
	SMTPAddr        string `name:"smtp-addr" env:"SMTP_ADDR" help:"Mail server host:port (required by the email handler)."`
	MailFrom        string `name:"mail-from" env:"MAIL_FROM" help:"Sender of the welcome email (required by the email handler)."`
	SMTPTLS         string `name:"smtp-tls" env:"SMTP_TLS" default:"opportunistic" enum:"opportunistic,starttls,tls,none" help:"SMTP transport security (${enum})."`
	SMTPUsername    string `name:"smtp-username" env:"SMTP_USERNAME" help:"SMTP user name (turns authentication on)."`
	SMTPPassword    string `name:"smtp-password" env:"SMTP_PASSWORD" help:"SMTP password."`
	SMTPConcurrency int    `name:"smtp-concurrency" env:"SMTP_CONCURRENCY" default:"4" help:"SMTP connections the email handler keeps open and sends on at once."`
}

// WorkerFlags select and tune the handlers; shared by worker and dev.
type WorkerFlags struct {
	Handlers    []string      `name:"handlers" env:"WORKER_HANDLERS" default:"email,profile,audit" help:"Handlers to run (email, profile, audit, nestjs)."`
	MaxRetries  int           `name:"max-retries" env:"WORKER_MAX_RETRIES" default:"5" help:"Retries of a failing message before it is dead-lettered."`
	Concurrency int           `name:"worker-concurrency" env:"WORKER_CONCURRENCY" default:"16" help:"Messages each handler works on at once, never two of one key (profile and audit hold up to 3 × the batch size, email up to the batch size)."`
	BatchSize   int           `name:"worker-batch-size" env:"WORKER_BATCH_SIZE" default:"100" help:"Most messages the profile and audit handlers write in one transaction."`
	BatchWait   time.Duration `name:"worker-batch-wait" env:"WORKER_BATCH_WAIT" default:"5ms" help:"Longest a batch waits for more messages; it never waits when it holds every message in flight."`
	// The default outlives a week-long broker outage's redeliveries.
	InboxRetention time.Duration `name:"inbox-retention" env:"INBOX_RETENTION" default:"168h" help:"How long handlers remember a processed message (keep it longer than the broker may redeliver one); 0 keeps rows forever, otherwise at least 1h."`
	NestJSFlags
}

func (f WorkerFlags) config(logger *slog.Logger, reg prometheus.Registerer) worker.Config {
	return worker.Config{
		Handlers: f.Handlers, MaxRetries: f.MaxRetries, BatchSize: f.BatchSize, BatchWait: f.BatchWait,
		Concurrency: f.Concurrency,
		Logger:      logger, Registerer: reg,
	}
}

// workerGCPercent is the worker's GOGC unless the environment sets one.
// The worker allocates a little for every message and keeps little alive,
// so at Go's default of 100 the collector ran often: a quarter of its CPU
// in `outboxd bench worker`, a tenth at 400, for a resident set of tens of
// megabytes either way.
const workerGCPercent = 400

// Run consumes until ctx ends, then stops after the messages in hand.
func (c *WorkerCmd) Run(ctx context.Context, g *Globals) error {
	logger := g.Logger()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(workerGCPercent)
	}
	var mailer mail.Mailer
	if slices.Contains(c.Handlers, worker.HandlerEmail) {
		// Checked before anything connects, so a missing SMTP_ADDR fails at once.
		tlsMode, err := mail.ParseTLSMode(c.SMTPTLS)
		if err != nil {
			return err
		}
		m, err := mail.NewSMTP(mail.SMTPConfig{
			Addr: c.SMTPAddr, From: c.MailFrom, TLS: tlsMode,
			Username: c.SMTPUsername, Password: c.SMTPPassword, Concurrency: c.SMTPConcurrency, Logger: logger,
		})
		if err != nil {
			return err
		}
		defer func() { _ = m.Close() }() // QUIT on the idle connections
		mailer = m
	}
	pool, err := g.Pool(ctx, database.WithMaxConns(c.WorkerFlags.config(logger, nil).Connections()))
	if err != nil {
		return err
	}
	defer pool.Close()
	bcfg, err := c.BrokerFlags.config(g, logger)
	if err != nil {
		return err
	}
	reg := newRegistry()
	w, beside, err := newWorker(pool, bcfg, mailer, c.WorkerFlags, logger, reg)
	if err != nil {
		return err
	}
	return runAll(ctx, append(beside, w.Run, func(ctx context.Context) error {
		return admin.Serve(ctx, c.AdminAddr, admin.Handler(reg, w.Ready), logger)
	})...)
}

// newWorker builds the worker with one broker subscriber per handler, the
// profile service beside the profile handler (with its NestJS side when
// NESTJS_BROKER is set), the nestjs handler's emitter, and the loop that runs
// beside it: the inbox pruner (unless inbox rows are kept).
func newWorker(pool *pgxpool.Pool, bcfg broker.Config, mailer mail.Mailer, f WorkerFlags, logger *slog.Logger, reg prometheus.Registerer) (*worker.Worker, []func(context.Context) error, error) {
	wcfg := f.config(logger, reg)
	// Each handler's subscription hands on as many messages at once as the
	// handler holds; the worker keeps a key's messages apart.
	held := map[string]int{}
	for _, h := range append(slices.Clone(worker.AllHandlers), worker.OptionalHandlers...) {
		held[worker.Group(h)] = wcfg.Held(h)
	}
	subscribe := func(ctx context.Context, group string) (message.Subscriber, error) {
		handlerBroker := bcfg
		handlerBroker.InFlight = held[group]
		return broker.NewSubscriber(ctx, handlerBroker, group)
	}
	services, err := profileServices(pool, bcfg, wcfg)
	if err != nil {
		return nil, nil, err
	}
	wcfg.Services = append(wcfg.Services, services...)
	nest, err := nestjsServices(pool, bcfg, f.NestJSFlags, &wcfg)
	if err != nil {
		return nil, nil, err
	}
	wcfg.Services = append(wcfg.Services, nest...)
	w, err := worker.New(pool, subscribe, mailer, wcfg)
	if err != nil {
		return nil, nil, err
	}
	return w, appendIf(nil, inboxPruner(logger, pool, f.InboxRetention)), nil
}
