package soak_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/outboxd/outboxd/internal/cli"
	"github.com/outboxd/outboxd/internal/pgtest"
)

// envChildArgs makes the test binary run outboxd itself with these
// JSON-encoded arguments, so the soak can start the API, the relays and the
// worker as real processes and kill them with SIGKILL.
const envChildArgs = "OUTBOXD_SOAK_CLI_ARGS"

func TestMain(m *testing.M) {
	if raw := os.Getenv(envChildArgs); raw != "" {
		var args []string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Main(ctx, args, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	pgtest.Main(m)
}
