// Command outboxd runs the transactional outbox service: the signup API, the
// relay sidecar, the worker, and their operational subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/outboxd/outboxd/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
