// Package cli is outboxd's command line: it reads the configuration from
// environment variables and flags and runs one subcommand. cmd/outboxd only
// calls Main, so the whole program is testable in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/database"
)

// DefaultDatabaseURL is where outboxd looks for PostgreSQL when DATABASE_URL
// is unset.
const DefaultDatabaseURL = "postgres://postgres@localhost:5432/outbox?sslmode=disable"

// Globals are the settings every subcommand shares.
type Globals struct {
	DatabaseURL string `name:"database-url" env:"DATABASE_URL" default:"${default_database_url}" help:"PostgreSQL DSN."`
	LogLevel    string `name:"log-level" env:"LOG_LEVEL" default:"info" enum:"debug,info,warn,error" help:"Log level (${enum})."`
	LogFormat   string `name:"log-format" env:"LOG_FORMAT" default:"auto" enum:"auto,json,text" help:"Log format (${enum}); auto is text for dev, json otherwise."`

	stdout io.Writer
	stderr io.Writer
	dev    bool // the dev command runs: auto log format is text
}

type root struct {
	Globals

	Migrate MigrateCmd `cmd:"" help:"Apply or roll back database migrations."`
	API     APICmd     `cmd:"" name:"api" help:"Serve the signup HTTP API."`
	Relay   RelayCmd   `cmd:"" help:"Publish committed outbox rows to the broker (run beside each API replica)."`
	Worker  WorkerCmd  `cmd:"" help:"Run the subscribers: welcome email, profile, audit log."`
	Console ConsoleCmd `cmd:"" help:"Serve the operator's console: backlog, relay, dead letters and their replay, in a browser."`
	Dev     DevCmd     `cmd:"" help:"Run everything in one process for development (creates and migrates the database, embedded NATS)."`
	Status  StatusCmd  `cmd:"" help:"Show the outbox backlog, dead letters and the active relay."`
	DLQ     DLQCmd     `cmd:"" name:"dlq" help:"List, replay or purge dead letters."`
	Bench   BenchCmd   `cmd:"" help:"Measure outboxd against its ceilings and Watermill's forwarder."`
}

// Main runs outboxd with args and returns the process exit code: 0 on
// success, 1 when the command failed, 2 on a usage error. Every failure is
// one line on stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	var cli root
	cli.stdout, cli.stderr = stdout, stderr
	exited := false
	parser, err := kong.New(&cli,
		kong.Name("outboxd"),
		kong.Description("A transactional outbox service on PostgreSQL."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { exited, code = true, c }),
		kong.Vars{"default_database_url": DefaultDatabaseURL},
		relayVars(),
		kong.BindTo(ctx, (*context.Context)(nil)),
	)
	if err != nil {
		fmt.Fprintf(stderr, "outboxd: %v\n", err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if exited { // --help
		return code
	}
	if err != nil {
		fmt.Fprintf(stderr, "outboxd: %v\n", oneLine(err.Error()))
		return 2
	}
	cli.dev = kctx.Command() == "dev"
	if err := kctx.Run(&cli.Globals); err != nil {
		if errors.Is(err, context.Canceled) {
			return 0
		}
		fmt.Fprintf(stderr, "outboxd %s: %v\n", kctx.Command(), oneLine(err.Error()))
		return 1
	}
	return 0
}

// Logger builds the process logger on stderr.
func (g *Globals) Logger() *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(g.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if g.LogFormat == "text" || g.LogFormat == "auto" && g.dev {
		return slog.New(slog.NewTextHandler(g.stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(g.stderr, opts))
}

// Pool opens the database named by DATABASE_URL. Its error names the address
// tried (never the password) and how to start a local PostgreSQL.
func (g *Globals) Pool(ctx context.Context, opts ...database.Option) (*pgxpool.Pool, error) {
	pool, err := database.Open(ctx, g.DatabaseURL, opts...)
	if err != nil {
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == "3D000": // invalid_catalog_name
			return nil, fmt.Errorf("%w; create it (createdb) or run `outboxd dev`, which creates it", err)
		case errors.As(err, &pgErr):
			return nil, err
		default: // nothing answered
			return nil, fmt.Errorf("no PostgreSQL answers at DATABASE_URL=%s; start a local server with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
				database.Redact(g.DatabaseURL))
		}
	}
	return pool, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
