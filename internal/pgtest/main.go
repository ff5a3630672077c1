package pgtest

import (
	"context"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// MainOption configures Main.
type MainOption func(*mainConfig)

type mainConfig struct {
	dsn      *string
	empty    bool
	ignore   []goleak.Option
	teardown []func()
}

// WithDatabase makes Main create a migrated database before the tests and
// drop it after them, and stores its DSN in *dsn: for Examples, which get no
// *testing.T to call NewDatabase with.
func WithDatabase(dsn *string) MainOption {
	return func(c *mainConfig) { c.dsn, c.empty = dsn, false }
}

// WithEmptyDatabase is WithDatabase without migrations: for Examples that
// migrate a database themselves.
func WithEmptyDatabase(dsn *string) MainOption {
	return func(c *mainConfig) { c.dsn, c.empty = dsn, true }
}

// IgnoreGoroutines adds goroutines the leak check tolerates, for a
// dependency's package-level workers.
func IgnoreGoroutines(opts ...goleak.Option) MainOption {
	return func(c *mainConfig) { c.ignore = append(c.ignore, opts...) }
}

// Main runs a package's tests and exits; call it from TestMain. After the
// tests pass it fails the run if a goroutine started by them is still
// running, so that every component's goroutines end with it.
func Main(m *testing.M, opts ...MainOption) {
	cfg := mainConfig{ignore: []goleak.Option{
		goleak.IgnoreCurrent(),
		// nats.go keeps a package-level timer pool goroutine.
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go.(*timeoutPool).run"),
	}}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.dsn != nil {
		create := Create
		if cfg.empty {
			create = CreateEmpty
		}
		dsn, drop, err := create(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*cfg.dsn = dsn
		cfg.teardown = append(cfg.teardown, func() {
			if err := drop(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		})
	}
	code := m.Run()
	for _, f := range cfg.teardown {
		f()
	}
	if code == 0 {
		if err := goleak.Find(cfg.ignore...); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
