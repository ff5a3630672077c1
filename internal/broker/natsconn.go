package broker

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// natsReconnectWait is how long a NATS connection waits between attempts
// to reconnect.
const natsReconnectWait = time.Second

// ConnectNATS connects to the NATS server cfg.URL names, as connection
// "outboxd <name>" (what the server's monitoring shows), within ctx's
// deadline if it has one. Once connected it never gives up: a relay, a
// worker or an API outlives broker restarts, reconnecting every second, and
// each disconnection and reconnection is logged on cfg.Logger (component
// broker, role name). cfg.Kind must be empty or KindNATS. Its errors never
// show the URL, which may hold a password. The publishers and subscribers
// of this package and the profile service's transport (internal/profilerpc)
// connect with it.
func ConnectNATS(ctx context.Context, cfg Config, name string) (*nats.Conn, error) {
	cfg.Kind = cmp.Or(cfg.Kind, KindNATS)
	if cfg.Kind != KindNATS {
		return nil, fmt.Errorf("connect to NATS: Config.Kind is %s", cfg.Kind)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	log := cfg.Logger.With("component", "broker", "broker", string(KindNATS), "role", name)
	opts := []nats.Option{
		nats.Name("outboxd " + name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(natsReconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "error", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("reconnected to NATS") }),
	}
	if deadline, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(time.Until(deadline)))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		// validate refused the URLs url.Parse fails on, whose errors quote
		// them; nats.go's own errors do not.
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	return nc, nil
}
