package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outboxd/outboxd/internal/console"
)

// ConsoleCmd serves the operator's console: the backlog, the relay, dead
// letters and their replay, in a browser.
type ConsoleCmd struct {
	ConsoleFlags
}

// ConsoleFlags configure the console; shared by console and dev.
type ConsoleFlags struct {
	ConsoleAddr   string   `name:"console-addr" env:"CONSOLE_ADDR" default:"127.0.0.1:9092" help:"Console listen address; beyond loopback it needs CONSOLE_PASSWORD."`
	ConsoleUser   string   `name:"console-user" env:"CONSOLE_USER" default:"admin" help:"Console basic-auth user."`
	Password      string   `name:"console-password" env:"CONSOLE_PASSWORD" help:"Console basic-auth password (prefer the environment to the flag); required beyond loopback."`
	PathPrefix    string   `name:"console-path-prefix" env:"CONSOLE_PATH_PREFIX" help:"Path the console lives under behind a reverse proxy, such as /outboxd."`
	Hosts         []string `name:"console-hosts" env:"CONSOLE_HOSTS" help:"Comma-separated host names the console answers to besides IP addresses and localhost (a reverse proxy's, say)."`
	RelayMetrics  string   `name:"console-relay-metrics" env:"CONSOLE_RELAY_METRICS" help:"URL of a relay's /metrics, sampled for the console's charts."`
	WorkerMetrics string   `name:"console-worker-metrics" env:"CONSOLE_WORKER_METRICS" help:"URL of a worker's /metrics, sampled for the console's charts."`
}

func (f ConsoleFlags) config(logger *slog.Logger) console.Config {
	return console.Config{
		Addr: f.ConsoleAddr, User: f.ConsoleUser, Password: f.Password, PathPrefix: f.PathPrefix,
		Hosts: f.Hosts, RelayMetrics: f.RelayMetrics, WorkerMetrics: f.WorkerMetrics, Logger: logger,
	}
}

// Validate is called by kong after parsing: a console that would serve
// anyone fails before anything connects.
func (c *ConsoleCmd) Validate() error { return c.config(nil).WithDefaults().Validate() }

// Run serves the console until ctx ends.
func (c *ConsoleCmd) Run(ctx context.Context, g *Globals) error {
	logger := g.Logger()
	pool, err := g.Pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	serve, url, err := newConsole(pool, c.ConsoleFlags, logger)
	if err != nil {
		return err
	}
	logger.Info("console listening", "url", url)
	return serve(ctx)
}

// newConsole builds the console and binds its address, so that a port in
// use fails at once; serve runs it until ctx ends.
func newConsole(pool *pgxpool.Pool, f ConsoleFlags, logger *slog.Logger) (serve func(context.Context) error, url string, err error) {
	con, err := console.New(pool, f.config(logger))
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", f.ConsoleAddr)
	if err != nil {
		return nil, "", fmt.Errorf("console listen on %s: %w", f.ConsoleAddr, err)
	}
	return func(ctx context.Context) error { return con.Serve(ctx, ln) }, con.URL(ln), nil
}
