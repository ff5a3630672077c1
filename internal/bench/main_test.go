package bench_test

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/outboxd/outboxd/internal/cli"
	"github.com/outboxd/outboxd/internal/pgtest"
)

func TestMain(m *testing.M) {
	// The worker benchmark runs `outboxd worker` as a child process of the
	// binary it runs in (os.Executable): in these tests, this test binary,
	// which then is outboxd.
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	pgtest.Main(m)
}
